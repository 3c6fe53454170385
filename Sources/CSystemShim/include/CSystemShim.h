#ifndef C_SYSTEM_SHIM_H
#define C_SYSTEM_SHIM_H

/// Makes glibc serve allocations of 4 MiB and more with mmap and caps malloc arenas at two.
/// Why a shim: <malloc.h> (mallopt and its M_* constants) is not part of Swift's Glibc module.
/// Backup and restore pass 1-8 MiB chunk buffers between threads; without this, freed buffers stay
/// cached in per-thread arenas and peak memory grows with the number of threads that touched them.
void polyad_limit_malloc_caching(void);

/// For the mount daemon: keep up to 64 MiB of freed heap for the next chunk buffers instead of returning it to
/// the kernel, which zeroes it again on the next touch (measured: 53k page faults per 500 MB read, 38k with
/// it). Not for backups, whose peak memory it would raise.
void polyad_keep_freed_heap(void);

#endif

#ifndef C_SYSTEM_SHIM_SPAWN
#define C_SYSTEM_SHIM_SPAWN
/// `POSIX_SPAWN_SETSID`. Why a shim: glibc declares it only under _GNU_SOURCE, which Swift's Glibc module
/// does not define. polyadfs starts its daemon in a session of its own with it.
short polyad_posix_spawn_setsid_flag(void);
#endif
