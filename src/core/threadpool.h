/*
 * threadpool.h -- the thread pool's pieces that tests reach but the rest of
 * the library does not need (the loop itself is in core/internal.h).
 */
#ifndef SPORE_CORE_THREADPOOL_H
#define SPORE_CORE_THREADPOOL_H

/* The thread count that SPORE_NUM_THREADS=`s` asks for: a decimal integer in
 * [1, CORE_MAX_THREADS] with optional surrounding blanks; anything else
 * (NULL, "", "abc", "4x", "0", "-3", overflow) gives `ncpu`.  Cannot fail. */
int core_num_threads_parse(const char *s, int ncpu);

/* The most threads the pool will run (sp_set_num_threads refuses more). */
#define CORE_MAX_THREADS 1024

#endif
