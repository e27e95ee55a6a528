//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "guest: runs only as PID 1 of a Linux virtual machine")
	os.Exit(2)
}
