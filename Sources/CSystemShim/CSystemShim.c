#define _GNU_SOURCE
#include "CSystemShim.h"
#include <malloc.h>
#include <spawn.h>

void polyad_limit_malloc_caching(void) {
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
    // Keep freed heap memory for the next chunk buffer instead of returning it to the kernel, which would
    // zero it again on the next touch (a page fault per 4 KiB, measured at about 50k per 500 MB read).
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

short polyad_posix_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
