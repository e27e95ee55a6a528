/*
 * A stand-in for Windows' bcryptprimitives.dll, which Wine 8 does not
 * have. Go's runtime takes its random bytes from ProcessPrng in that DLL
 * and will not start without it; this one asks BCryptGenRandom, which
 * Wine does have, for the same bytes.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
