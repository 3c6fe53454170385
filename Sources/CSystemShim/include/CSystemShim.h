#ifndef C_SYSTEM_SHIM_H
#define C_SYSTEM_SHIM_H

/// Makes glibc serve allocations of 256 KiB and more with mmap and caps malloc arenas at four.
/// Why a shim: <malloc.h> (mallopt and its M_* constants) is not part of Swift's Glibc module.
/// Backup and restore pass 1-8 MiB chunk buffers between threads; without this, freed buffers stay
/// cached in per-thread arenas and peak memory grows with the number of threads that touched them.
void polyad_limit_malloc_caching(void);

#endif

#ifndef C_SYSTEM_SHIM_SPAWN
#define C_SYSTEM_SHIM_SPAWN
/// `POSIX_SPAWN_SETSID`. Why a shim: glibc declares it only under _GNU_SOURCE, which Swift's Glibc module
/// does not define. polyadfs starts its daemon in a session of its own with it.
short polyad_posix_spawn_setsid_flag(void);
#endif
