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

#ifndef C_SYSTEM_SHIM_STAGING
#define C_SYSTEM_SHIM_STAGING

// The calls the mount's `/incoming` passes through to its staging folder. Why a shim: glibc declares
// renameat2, fallocate, syncfs, O_PATH, AT_EMPTY_PATH and the RENAME_* flags only under _GNU_SOURCE, and
// <sys/xattr.h> is not part of Swift's Glibc module. Each returns what the C call returns (-1 and errno).
// Plain C types only: a system header included here would make Glibc's types come from this module.

/// `O_PATH`: a descriptor that names a file without opening it for reading or writing.
int polyad_open_path_flag(void);
/// `AT_EMPTY_PATH`: an empty name means the descriptor itself.
int polyad_at_empty_path_flag(void);
/// `RENAME_NOREPLACE`, `RENAME_EXCHANGE`.
unsigned int polyad_rename_noreplace_flag(void);
unsigned int polyad_rename_exchange_flag(void);
int polyad_renameat2(int olddirfd, const char *oldname, int newdirfd, const char *newname, unsigned int flags);
int polyad_fallocate(int fd, int mode, long long offset, long long length);
int polyad_syncfs(int fd);
long polyad_getxattr(const char *path, const char *name, void *value, unsigned long size, int follow);
long polyad_listxattr(const char *path, char *list, unsigned long size, int follow);
int polyad_setxattr(const char *path, const char *name, const void *value, unsigned long size, int flags,
                    int follow);
int polyad_removexattr(const char *path, const char *name, int follow);
#endif

#ifndef C_SYSTEM_SHIM_SIGNALS
#define C_SYSTEM_SHIM_SIGNALS

// SIGHUP as a request to reload (the mount: resolve the access rules again, reopen the access log), handed to
// a thread of the program's own. Why a shim: a signal handler may only make async-signal-safe calls, and
// Swift closures are not; this one writes one byte to a pipe, and the waiting thread reads it.

/// Installs the handler for `signo` (once): 0, or -1 with errno.
int polyad_reload_signal_install(int signo);
/// Blocks until the signal arrives (1) or `polyad_reload_signal_stop` is called (0).
int polyad_reload_signal_wait(void);
/// Wakes the waiting thread for good (at unmount).
void polyad_reload_signal_stop(void);
/// `prctl(PR_SET_DUMPABLE, 0)`: no core dump (and no ptrace by the same user) of a process holding keys.
int polyad_disable_core_dumps(void);
#endif
