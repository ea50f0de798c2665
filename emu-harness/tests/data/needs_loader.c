/* Error-path fixture: images that need a run-time loader, which emu-harness refuses.
 * As a Windows executable it imports GetTickCount from kernel32.dll; as an ELF shared
 * object the initialised pointer below needs a dynamic relocation. Built with
 * -DWITHOUT_POINTER and linked against libc, it has no relocation but needs libc.so.6. */

#if defined(_WIN32)
__declspec(dllimport) unsigned long __stdcall GetTickCount(void);
unsigned long ticks(void) { return GetTickCount(); }
#endif

int target;
#ifndef WITHOUT_POINTER
int *pointer = &target;
#endif
