/*
 * version.c -- the library's version string.
 *
 * One definition, taken from SPORE_VERSION in spore/core.h, so that the
 * header a program was compiled against and the library it runs with can be
 * compared at run time (a binding checks sp_version() against the header's
 * macro and refuses a mismatch).
 */
#include "spore/spore.h"

const char *sp_version(void) { return SPORE_VERSION; }
