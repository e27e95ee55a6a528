//go:build !unix

package faultnet

import (
	"errors"
	"net"
)

// heldPort is a port kept while refusing; only Unix systems keep one.
type heldPort struct{}

func holdPort(net.Addr) *heldPort { return nil }

func (h *heldPort) listen() (net.Listener, error) { return nil, errors.ErrUnsupported }

func (h *heldPort) release() {}
