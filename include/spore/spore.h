/*
 * spore/spore.h -- the umbrella header of Spore's public C API.
 *
 * core.h: tensors, dtypes, errors, threads, random numbers.
 * ops.h:  the primitives, called by name or id.
 * data.h: dataset loaders, vision transforms and the input pipeline.
 * io.h:   checkpoints (safetensors).
 * program.h: whole programs in the source language: compile, call, grad,
 *          parameters.
 * Later layers (programs, autodiff, training) add their headers here.
 */
#ifndef SPORE_SPORE_H
#define SPORE_SPORE_H

#include "spore/core.h"
#include "spore/ops.h"
#include "spore/data.h"
#include "spore/io.h"
#include "spore/program.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version string ("0.1.0"). */
const char *sp_version(void);

#ifdef __cplusplus
}
#endif
#endif
