#define _GNU_SOURCE
#include "CSystemShim.h"
#include <malloc.h>
#include <spawn.h>

void polyad_limit_malloc_caching(void) {
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    mallopt(M_ARENA_MAX, 2);
}

void polyad_keep_freed_heap(void) {
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

short polyad_posix_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
