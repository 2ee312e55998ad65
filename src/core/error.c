/*
 * error.c -- errors as values, with one thread-local message.
 *
 * Every fallible Spore function returns an sp_status (or NULL) and leaves a
 * human-readable message here, at the point of failure, naming the primitive
 * and the shapes, dtypes or axes involved.  Callers up the stack pass the
 * status along without rewriting the message, so what the user reads is the
 * most specific account of what went wrong.
 *
 * The message and code live in thread-local storage: two threads that fail
 * at once each keep their own account, and no lock is ever taken.  The
 * buffer has a fixed size; a longer message is truncated (always
 * NUL-terminated), never an allocation that could itself fail.
 *
 * Invariant: sp_last_error() never returns NULL; "" means no error since the
 * last sp_clear_error() on this thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "spore/core.h"

#define ERR_BUF_SIZE 2048

static _Thread_local char err_msg[ERR_BUF_SIZE];
static _Thread_local sp_status err_code = SP_OK;

const char *sp_last_error(void) { return err_msg; }

sp_status sp_last_status(void) { return err_code; }

void sp_clear_error(void) {
    err_msg[0] = '\0';
    err_code = SP_OK;
}

const char *sp_status_name(sp_status s) {
    switch (s) {
    case SP_OK: return "ok";
    case SP_ERR_ARG: return "argument error";
    case SP_ERR_SHAPE: return "shape error";
    case SP_ERR_DTYPE: return "dtype error";
    case SP_ERR_NOMEM: return "out of memory";
    case SP_ERR_IO: return "I/O error";
    case SP_ERR_FORMAT: return "format error";
    case SP_ERR_UNSUPPORTED: return "unsupported";
    case SP_ERR_DEVICE: return "device error";
    case SP_ERR_SYNTAX: return "syntax error";
    case SP_ERR_TYPE: return "type error";
    case SP_ERR_RUNTIME: return "runtime error";
    case SP_ERR_INTERNAL: return "internal error";
    case SP_ERR_VALUE: return "value error";
    }
    return "unknown error";
}

sp_status sp_error(sp_status code, const char *fmt, ...) {
    /* Format into a scratch buffer first: a caller may pass sp_last_error()
     * itself as an argument (to add context), and vsnprintf must not read
     * the buffer it is writing. */
    char tmp[ERR_BUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(err_msg, tmp, sizeof tmp);
    err_code = code;
    return code;
}
