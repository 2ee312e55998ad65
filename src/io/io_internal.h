/*
 * io_internal.h -- what the tests of src/io reach that users do not.
 *
 * The atomic-save test needs a write that fails (or a process that dies)
 * part-way through a checkpoint, which no real file system produces on
 * demand; this hook makes the writer do exactly that.
 */
#ifndef SPORE_IO_INTERNAL_H
#define SPORE_IO_INTERNAL_H

#include <stdint.h>

/* From now on, a checkpoint write stops after `nbytes` bytes of the file:
 * with crash == 0 the write fails as with ENOSPC (the save must clean up
 * and leave the old file alone); with crash != 0 the process calls
 * _exit(3) there, as a power cut would stop it.  nbytes < 0 turns the hook
 * off.  Not thread-safe; for tests only. */
void io_test_fail_after(int64_t nbytes, int crash);

#endif
