/*
 * expr.h — compiled expressions: small stack-machine programs over a row of
 * typed slots, and the per-worker context they run in. Internal to cep.
 *
 * A program never looks a field up by name and never calls malloc: strings
 * it builds go to the context's scratch arena, which the caller resets per
 * event. The opcodes are documented in expr.c, where they are implemented.
 */
#ifndef CEP_EXPR_H
#define CEP_EXPR_H

#include "patterns/value.h"

typedef enum cep_op {
    OP_COL,      /* push row[a] */
    OP_CONST,    /* push consts[a] */
    OP_NEG,      /* numeric negate */
    OP_ARITH,    /* a = '+','-','*','/','%'; b = result kind; c = result scale */
    OP_CONCAT,   /* string + string */
    OP_CMP,      /* a = TK_EQ.. TK_GE */
    OP_NOT,
    OP_AND,
    OP_OR,
    OP_ISNULL,   /* a = 1 for IS NOT NULL */
    OP_DISTINCT, /* a = 1 for IS NOT DISTINCT FROM */
    OP_IN,       /* b = list length; pops b+1 */
    OP_LIKE,     /* aux = precompiled pattern or NULL; b = nargs (2 or 3) */
    OP_JMP,      /* pc = a */
    OP_JMPNT,    /* pop; if not TRUE: pc = a */
    OP_POP,
    OP_CALL,     /* a = function id, b = nargs; aux = function state */
    OP_CAST,     /* aux = target type */
    OP_INDEX,    /* array[i] (1-based, negative from the end) or map[k] */
    OP_FIELD,    /* struct field a */
    OP_MKARRAY,  /* b = n; aux = type */
    OP_MKMAP,    /* b = 2n; aux = type */
    OP_MKSTRUCT, /* b = n; aux = type */
    OP_COUNT_
} cep_op_t;

typedef struct cep_insn {
    uint8_t op;
    uint8_t c;
    uint16_t b;
    uint32_t a;
    const void *aux;
} cep_insn_t;

/* Programs of one of these shapes run without the interpreter when their
 * values allow (see cep_program_run): a column, or a column compared with
 * a constant (HAVING COUNT(*) >= 5, WHERE event_type = 'login'). */
typedef enum cep_shape { CEP_SHAPE_ANY, CEP_SHAPE_COL, CEP_SHAPE_COL_CMP } cep_shape_t;

typedef struct cep_program {
    cep_insn_t *code;
    uint32_t ncode;
    cep_value_t *consts;
    uint32_t nconsts;
    uint32_t max_stack;
    const cep_type_t *type; /* result type */
    const char *text;       /* normalised source text, for explain and sharing */
    uint8_t shape;          /* cep_shape_t */
    uint8_t cmp;            /* COL_CMP: the comparison (TK_EQ..TK_GE) */
    uint32_t col;           /* COL, COL_CMP: the column */
    cep_value_t k;          /* COL_CMP: the constant */
} cep_program_t;

/* Work out p's shape again after its code changed in place. */
void cep_program_shape(cep_program_t *p);

/* Per-worker evaluation context. */
typedef struct cep_eval {
    cep_value_t *stack;
    uint32_t stack_cap;
    cep_arena_t *scratch; /* strings built while evaluating */
    cep_error_t *err;     /* optional: where a runtime error is recorded */
    bool failed;          /* the last program raised a runtime error */
    /* event-time progress of the record being processed when its source has
     * several partitions: the minimum over the active partitions of their
     * largest event time (operators advance stream time to it, not to the
     * record's own time). has_watermark false: one partition, use the record */
    bool has_watermark;
    int64_t watermark;
} cep_eval_t;

/* Run p over row; the result goes to *out. Returns false if the program
 * raised a runtime error (bad UDF input, division by zero...), in which case
 * *out is NULL and ctx->err says why. */
bool cep_program_run(const cep_program_t *p, const cep_value_t *row, cep_eval_t *ctx,
                     cep_value_t *out);

/* ---- program builder (used by the binder) ------------------------------ */

typedef struct cep_progbuf {
    cep_arena_t *arena;
    cep_insn_t *code;
    uint32_t ncode, cap;
    cep_value_t *consts;
    uint32_t nconsts, ccap;
    int depth, max_depth;
    bool oom;
} cep_progbuf_t;

void cep_progbuf_init(cep_progbuf_t *pb, cep_arena_t *arena);
uint32_t cep_progbuf_emit(cep_progbuf_t *pb, cep_op_t op, uint32_t a, uint16_t b, uint8_t c,
                          const void *aux, int stack_delta);
uint32_t cep_progbuf_const(cep_progbuf_t *pb, cep_value_t v);
cep_program_t *cep_progbuf_finish(cep_progbuf_t *pb, const cep_type_t *type, const char *text);

/* ---- functions --------------------------------------------------------- */

typedef struct cep_func cep_func_t;
typedef bool (*cep_func_eval_fn)(cep_eval_t *ctx, const void *state, cep_value_t *args, int n,
                                 cep_value_t *out);

struct cep_func {
    const char *name;
    int min_args, max_args; /* max -1: variadic */
    /* Returns the result type, or NULL with err set. May rewrite argument
     * types it wants coerced through coerce[] (NULL = leave as is). */
    const cep_type_t *(*check)(cep_arena_t *a, const cep_type_t **args, int n,
                               const cep_type_t **coerce, const cep_pos_t *pos, cep_error_t *err);
    cep_func_eval_fn eval;
    bool null_propagates; /* any NULL argument gives NULL without calling eval */
    /* Optional: prepare per-call-site state from constant arguments
     * (compiled regexes). consts[i] is NULL where argument i is not constant. */
    void *(*prepare)(cep_arena_t *a, const cep_value_t *const *consts, int n, const cep_pos_t *pos,
                     cep_error_t *err);
};

const cep_func_t *cep_func_lookup(const char *name, int *id);
const cep_func_t *cep_func_by_id(int id);
/* Number of scalar functions; ids run 0..count-1 (docs/GRAMMAR.md lists them). */
int cep_func_count(void);

/* LIKE pattern, precompiled when the pattern is constant. */
typedef struct cep_like cep_like_t;
cep_like_t *cep_like_compile(cep_arena_t *a, const char *pat, size_t n, int escape);
bool cep_like_match(const cep_like_t *l, const char *s, size_t n);

/* Parse ksqlDB's timestamp text ('2018-01-01T00:00:00.001', optional zone
 * '+0445' or 'Z') to ms since the epoch. */
bool cep_parse_timestamp_text(const char *s, size_t n, int64_t *ms);

#endif
