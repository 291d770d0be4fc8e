/* ProcessPrng for Wine 8.0, which lacks bcryptprimitives.dll!ProcessPrng.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll on Windows; under
 * Wine 8.0 no executable built by it can load without this export. scripts/windows-test builds
 * this file into a bcryptprimitives.dll placed in the scratch Wine prefix, for the tests only.
 * It fills the buffer from advapi32's SystemFunction036 (RtlGenRandom), whose length is a
 * ULONG, in chunks of at most 0x40000000 bytes. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
