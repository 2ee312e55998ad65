/*
 * rules.c -- the gradient rules as one compiled module.
 *
 * The build embeds the .py files of src/ops/bprop (the primitives' rules)
 * and of src/ad (the builtins' rules and the grad machinery) as C strings
 * (cmake/embed_bprop.cmake -> sp_bprop_sources).  At the first lookup they
 * are concatenated, in file-name order, into one source text and compiled
 * by the front end as one module, so every file sees the others'
 * top-level names (a shared helper in common.py, _ad_* here).  The module
 * lives until the process exits: K graphs of the rules are added to it and
 * cached on its graphs, and the VM holds graph pointers into it.
 *
 * Thread safety: the first compile happens under a mutex; afterwards the
 * module is only read (K graphs are added by whichever thread runs the
 * grad, like every K graph -- the VM is single-threaded per run).
 *
 * A compile error in a rule file is reported at every lookup, with the
 * file:line:col of the concatenated text ("<bprop>" names it) and the
 * caret line.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "frontend/frontend.h"

extern const char *const sp_bprop_sources[];

static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static sp_module *rules_module;
static char *rules_error;

static void rules_load(void) {
    size_t len = 0;
    for (int i = 0; sp_bprop_sources[i]; i += 2) len += strlen(sp_bprop_sources[i + 1]) + 64;
    char *text = malloc(len + 1), *p = text;
    if (!text) {
        rules_error = strdup("gradient rules: out of memory");
        return;
    }
    for (int i = 0; sp_bprop_sources[i]; i += 2) {
        p += sprintf(p, "# ---- %s\n", sp_bprop_sources[i]);
        size_t n = strlen(sp_bprop_sources[i + 1]);
        memcpy(p, sp_bprop_sources[i + 1], n);
        p += n;
        *p++ = '\n';
    }
    *p = '\0';
    rules_module = sp_frontend_compile("<bprop>", text, 0, NULL);
    free(text);
    if (!rules_module) {
        const char *e = sp_last_error();
        size_t n = strlen(e) + 64;
        rules_error = malloc(n);
        if (rules_error) snprintf(rules_error, n, "the gradient rules do not compile: %s", e);
    }
}

static sp_module *rules(void) {
    pthread_mutex_lock(&rules_lock);
    if (!rules_module && !rules_error) rules_load();
    pthread_mutex_unlock(&rules_lock);
    if (!rules_module) sp_error(SP_ERR_INTERNAL, "%s", rules_error ? rules_error : "gradient rules: out of memory");
    return rules_module;
}

sp_value *ad_rule(const char *name) {
    sp_module *m = rules();
    return m ? ir_module_get_global(m, name) : NULL;
}

sp_value *ad_rule_required(const char *name) {
    sp_module *m = rules();
    if (!m) return NULL;
    sp_value *v = ir_module_get_global(m, name);
    if (!v) sp_error(SP_ERR_INTERNAL, "gradient rules: no function %s", name);
    return v;
}
