/*
 * match.c — the MATCH_RECOGNIZE operator: a Pike VM over the pattern's NFA,
 * per partition, in event time.
 *
 * Rows wait in a buffer until the watermark passes them, then enter their
 * partition in (event time, ORDER BY keys, arrival) order. Every row starts
 * a "search" (a candidate match start); a search holds its threads in
 * preference order (alternation left first, greedy loops before their exit,
 * reluctant loops after). A thread is an NFA position plus its mapping of
 * rows to variables: a reference-counted chain of labels, so runs share
 * their common prefix and nothing is copied per row. A row is tried as a
 * variable with the row already in the variable's set (running semantics);
 * a failing try leaves nothing behind. When a thread reaches MATCH, the
 * threads after it (less preferred) are dropped; the match is final once the
 * threads before it are dead too. Threads that reach the same position with
 * the same mapping are merged (the less preferred is dropped), which is the
 * empty-cycle guard and keeps `(A+)+ B` linear.
 *
 * Searches resolve in start order: a later search's match waits until every
 * earlier search is resolved, because a match there could skip over it.
 * AFTER MATCH SKIP then discards the searches that start before the skip
 * target. WITHIN kills a thread when a row (or the watermark) is at least
 * the window past the search's first row; without WITHIN a thread lives as
 * long as its pattern allows, and a greedy quantifier at the end of a
 * pattern never resolves (there is no end of partition in a stream).
 */
#include "patterns/match.h"
#include "patterns/agg.h"
#include "state/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct label {
    struct label *parent;
    uint64_t row;  /* partition row index */
    uint32_t var;
    uint32_t len;  /* rows mapped so far, this one included */
    uint64_t h;    /* hash of the whole mapping, for merging equivalent threads */
    uint32_t refs;
} label_t;

typedef struct thread {
    uint32_t pc;
    label_t *lab;
} thread_t;

typedef struct search {
    uint64_t start;
    int64_t start_ts;
    thread_t *th;
    uint32_t nth, capth;
    bool has_match;
    label_t *match; /* the best match so far (NULL with has_match: the empty match) */
    bool absence_over; /* NOT FOLLOWED BY: a row at or past the window's end was seen */
} search_t;

typedef struct part {
    cep_value_t *keyvals;
    cep_value_t **rows; /* rows[i - base], each a cloned input row */
    uint64_t base, count, cap; /* rows held: [base, base + count) */
    uint64_t next_row;   /* index the next row gets */
    uint64_t next_start; /* no match may start before this row (AFTER MATCH SKIP) */
    search_t *s;
    uint32_t ns, caps;
    uint64_t match_number;
} part_t;

/* A partition that needs the watermark's attention at `due`: a WITHIN
 * bound or a NOT FOLLOWED BY window ends there. */
typedef struct timer {
    int64_t due;
    uint32_t klen;
    char *key;
} timer_t_;

typedef struct pending_row {
    int64_t ts;
    uint64_t seq;
    cep_value_t *v;
} pending_row_t;

struct cep_matchop {
    const cep_query_t *q;
    const cep_match_plan_t *m;
    const cep_stream_t *from;
    uint32_t row_slots; /* a stored row: the used input columns, then the pseudo columns */
    uint32_t *cols;     /* the input column of each stored column */
    uint32_t ncols_used;
    cep_value_t *full;  /* a stored row expanded to the input layout, for programs */
    /* DEFINEs that read only the current row are evaluated once per row for
     * all runs: the result, valid while memo_at[v] == epoch */
    uint64_t *memo_at, epoch;
    bool *memo_val;
    cep_table_t *parts; /* in the task's store */
    pending_row_t *pend;
    uint32_t npend, cappend;
    uint64_t seq;
    int64_t wm, max_ts;
    int64_t delay; /* < 0: explicit watermarks only */
    bool *used;         /* input columns some program reads: only these are kept per row */
    bool forgetful;     /* partitions may be released and skipped: no ^ anchor, no PREV history */
    cep_value_t *scope; /* the row DEFINE and MEASURES programs read */
    cep_value_t *out;   /* output columns */
    uint64_t *tmp;      /* row indices of a mapping, oldest first */
    uint32_t captmp;
    thread_t *work;     /* next thread list while stepping */
    uint32_t nwork, capwork;
    uint8_t *seen;      /* per pc: visited in the current closure */
    cep_buf_t keybuf;
    timer_t_ *timers; /* min-heap by due */
    uint32_t ntimers, captimers;
    char error[256];
    cep_match_stats_t stats;
};

/* ---- timers --------------------------------------------------------------- */

static void timer_add(cep_matchop_t *op, int64_t due, const char *key, uint32_t klen)
{
    if (op->ntimers == op->captimers) {
        uint32_t cap = op->captimers ? op->captimers * 2 : 64;
        timer_t_ *n = realloc(op->timers, cap * sizeof *n);
        if (!n) return;
        op->timers = n;
        op->captimers = cap;
    }
    char *k = malloc(klen ? klen : 1);
    if (!k) return;
    memcpy(k, key, klen);
    timer_t_ t = {due, klen, k};
    uint32_t i = op->ntimers++;
    while (i > 0 && op->timers[(i - 1) / 2].due > due) {
        op->timers[i] = op->timers[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    op->timers[i] = t;
}

static timer_t_ timer_pop(cep_matchop_t *op)
{
    timer_t_ top = op->timers[0], last = op->timers[--op->ntimers];
    uint32_t i = 0, n = op->ntimers;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && op->timers[c + 1].due < op->timers[c].due) c++;
        if (op->timers[c].due >= last.due) break;
        op->timers[i] = op->timers[c];
        i = c;
    }
    if (n) op->timers[i] = last;
    return top;
}

/* ---- labels -------------------------------------------------------------- */

static void lab_unref(label_t *l)
{
    while (l && --l->refs == 0) {
        label_t *p = l->parent;
        free(l);
        l = p;
    }
}

static label_t *lab_ref(label_t *l)
{
    if (l) l->refs++;
    return l;
}

static uint64_t lab_hash(const label_t *parent, uint64_t row, uint32_t var)
{
    return cep_hash_mix((parent ? parent->h : 0x9e3779b97f4a7c15ULL) ^ (row * 0x100000001b3ULL + var + 1));
}

static label_t *lab_push(label_t *parent, uint64_t row, uint32_t var)
{
    label_t *l = malloc(sizeof *l);
    if (!l) return NULL;
    l->parent = lab_ref(parent);
    l->row = row;
    l->var = var;
    l->len = parent ? parent->len + 1 : 1;
    l->h = lab_hash(parent, row, var);
    l->refs = 1;
    return l;
}

/* ---- partitions ------------------------------------------------------------ */

static void search_clear(search_t *s)
{
    for (uint32_t i = 0; i < s->nth; i++) lab_unref(s->th[i].lab);
    free(s->th);
    lab_unref(s->match);
    memset(s, 0, sizeof *s);
}

static void part_free(void *ctx, cep_entry_t *e)
{
    cep_matchop_t *op = ctx;
    part_t *p = e->data;
    if (!p) return;
    for (uint32_t i = 0; i < p->ns; i++) search_clear(&p->s[i]);
    free(p->s);
    for (uint64_t i = 0; i < p->count; i++) {
        cep_value_t *r = p->rows[(p->base + i) % p->cap];
        for (uint32_t c = 0; r && c < op->row_slots; c++) cep_value_free_owned(&r[c]);
        free(r);
    }
    free(p->rows);
    if (p->keyvals)
        for (uint32_t i = 0; i < op->m->npartition; i++) cep_value_free_owned(&p->keyvals[i]);
    free(p->keyvals);
    free(p);
    e->data = NULL;
}

static const cep_value_t *row_at(const part_t *p, uint64_t idx)
{
    if (idx < p->base || idx >= p->base + p->count) return NULL;
    return p->rows[idx % p->cap];
}

static bool part_append(cep_matchop_t *op, part_t *p, cep_value_t *row)
{
    if (p->count == p->cap) {
        uint64_t cap = p->cap ? p->cap * 2 : 16;
        cep_value_t **n = calloc(cap, sizeof *n);
        if (!n) return false;
        for (uint64_t i = 0; i < p->count; i++) n[(p->base + i) % cap] = p->rows[(p->base + i) % p->cap];
        free(p->rows);
        p->rows = n;
        p->cap = cap;
    }
    p->rows[(p->base + p->count) % p->cap] = row;
    p->count++;
    p->next_row++;
    (void)op;
    return true;
}

/* Release rows no search and no PREV can reach any more. */
static void part_trim(cep_matchop_t *op, part_t *p)
{
    uint64_t keep = p->next_row;
    for (uint32_t i = 0; i < p->ns; i++)
        if (p->s[i].start < keep) keep = p->s[i].start;
    keep = keep > op->m->max_prev ? keep - op->m->max_prev : 0;
    while (p->count && p->base < keep) {
        cep_value_t *r = p->rows[p->base % p->cap];
        for (uint32_t c = 0; c < op->row_slots; c++) cep_value_free_owned(&r[c]);
        free(r);
        p->rows[p->base % p->cap] = NULL;
        p->base++;
        p->count--;
    }
    if (!p->count) p->base = p->next_row;
}

/* ---- navigation ------------------------------------------------------------- */

static bool var_in(uint64_t vars, uint32_t v)
{
    return !vars || (vars >> v & 1);
}

/* The mapping's row indices (and variables), oldest first, into op->tmp. */
static uint32_t mapping(cep_matchop_t *op, const label_t *l, uint32_t **vars_out)
{
    uint32_t n = l ? l->len : 0;
    if (2 * n > op->captmp) {
        uint32_t cap = 2 * n + 16;
        uint64_t *t = realloc(op->tmp, cap * sizeof *t);
        if (!t) return 0;
        op->tmp = t;
        op->captmp = cap;
    }
    uint32_t i = n;
    for (const label_t *x = l; x; x = x->parent) {
        i--;
        op->tmp[i] = x->row;
        op->tmp[n + i] = x->var;
    }
    if (vars_out) *vars_out = NULL;
    return n;
}

/* A stored row in the input layout (unused columns stay NULL). One buffer:
 * valid until the next call. */
static const cep_value_t *expand(cep_matchop_t *op, const cep_value_t *row)
{
    uint32_t nin = op->from->ncols, k0 = op->ncols_used;
    for (uint32_t j = 0; j < k0; j++) op->full[op->cols[j]] = row[j];
    for (uint32_t c = 0; c < CEP_PSEUDO_COUNT; c++) op->full[nin + c] = row[k0 + c];
    return op->full;
}

static int64_t row_ts(const cep_matchop_t *op, const cep_value_t *row)
{
    return row[op->ncols_used + CEP_PSEUDO_ROWTIME].u.i;
}

static cep_value_t eval_inner(cep_matchop_t *op, const cep_nav_t *nv, const cep_value_t *row, cep_eval_t *ev)
{
    cep_value_t v = cep_null();
    if (!row || !nv->inner) return v;
    if (!cep_program_run(nv->inner, expand(op, row), ev, &v)) v = cep_null();
    return v;
}

static cep_value_t nav_value(cep_matchop_t *op, const part_t *p, const cep_nav_t *nv, const label_t *lab,
                             uint64_t cur, cep_eval_t *ev)
{
    const cep_match_plan_t *m = op->m;
    uint32_t n = mapping(op, lab, NULL);
    uint64_t *rows = op->tmp, *vars = op->tmp + n;
    switch (nv->kind) {
    case NAV_MATCH_NUMBER: return cep_v_int(CEP_K_BIGINT, (int64_t)p->match_number + 1);
    case NAV_CLASSIFIER:
    case NAV_FIRST:
    case NAV_LAST: {
        int64_t k = nv->offset;
        if (k < 0) return cep_null();
        int64_t seen = 0;
        bool first = nv->kind == NAV_FIRST;
        for (uint32_t j = 0; j < n; j++) {
            uint32_t at = first ? j : n - 1 - j;
            if (!var_in(nv->vars, (uint32_t)vars[at])) continue;
            if (seen++ < k) continue;
            if (nv->classifier || nv->kind == NAV_CLASSIFIER) {
                const char *name = m->vars[vars[at]];
                return cep_v_str(name, strlen(name));
            }
            return eval_inner(op, nv, row_at(p, rows[at]), ev);
        }
        return cep_null();
    }
    case NAV_PREV: {
        uint64_t base = cur;
        if (nv->prev_from_last) {
            bool found = false;
            for (uint32_t j = n; j-- > 0;)
                if (var_in(nv->vars, (uint32_t)vars[j])) {
                    base = rows[j];
                    found = true;
                    break;
                }
            if (!found) return cep_null();
        }
        if (nv->offset < 0 || (uint64_t)nv->offset > base) return cep_null();
        return eval_inner(op, nv, row_at(p, base - (uint64_t)nv->offset), ev);
    }
    case NAV_AGG: {
        int64_t cnt = 0, isum = 0;
        double dsum = 0;
        bool dbl = nv->inner && nv->inner->type && nv->inner->type->kind == CEP_K_DOUBLE;
        cep_value_t best = cep_null();
        for (uint32_t j = 0; j < n; j++) {
            if (!var_in(nv->vars, (uint32_t)vars[j])) continue;
            if (nv->count_star) {
                cnt++;
                continue;
            }
            cep_value_t v = eval_inner(op, nv, row_at(p, rows[j]), ev);
            if (v.kind == CEP_K_NULL) continue;
            cnt++;
            if (v.kind == CEP_K_DOUBLE) dsum += v.u.d, dbl = true;
            else if (v.kind == CEP_K_INT || v.kind == CEP_K_BIGINT || v.kind == CEP_K_DECIMAL) isum += v.u.i;
            if (best.kind == CEP_K_NULL) best = v;
            else {
                int c = cep_value_cmp(&v, &best);
                if ((nv->agg == AGG_MIN && c < 0) || (nv->agg == AGG_MAX && c > 0)) best = v;
            }
        }
        switch (nv->agg) {
        case AGG_COUNT: return cep_v_int(CEP_K_BIGINT, cnt);
        case AGG_MIN:
        case AGG_MAX: return best;
        case AGG_SUM:
            if (!cnt) return cep_null();
            if (nv->type->kind == CEP_K_DOUBLE) return cep_v_double(dbl ? dsum + (double)isum : (double)isum);
            if (nv->type->kind == CEP_K_DECIMAL) {
                cep_value_t d = cep_v_int(CEP_K_DECIMAL, isum);
                d.scale = nv->type->scale;
                return d;
            }
            return cep_v_int(nv->type->kind, isum);
        case AGG_AVG:
            if (!cnt) return cep_null();
            {
                double total = dsum + (double)isum;
                if (nv->inner && nv->inner->type && nv->inner->type->kind == CEP_K_DECIMAL) {
                    double scale = 1;
                    for (int s = 0; s < nv->inner->type->scale; s++) scale *= 10;
                    total = (double)isum / scale;
                }
                return cep_v_double(total / (double)cnt);
            }
        default: return cep_null();
        }
    }
    }
    return cep_null();
}

/* Run a DEFINE or MEASURES expression: the current row's columns, then its
 * navigations, then the current row's pseudo columns. */
static bool mexpr_eval(cep_matchop_t *op, const part_t *p, const cep_mexpr_t *x, const label_t *lab,
                       uint64_t cur, bool has_cur, cep_eval_t *ev, cep_value_t *out)
{
    const cep_match_plan_t *m = op->m;
    const cep_value_t *row = has_cur ? row_at(p, cur) : NULL;
    uint32_t nin = op->from->ncols, k0 = op->ncols_used;
    for (uint32_t j = 0; j < k0; j++) op->scope[op->cols[j]] = row ? row[j] : cep_null();
    for (uint32_t k = 0; k < x->nnavs; k++)
        op->scope[nin + x->navs[k]] = nav_value(op, p, &m->navs[x->navs[k]], lab, cur, ev);
    for (uint32_t c = 0; c < CEP_PSEUDO_COUNT; c++) op->scope[m->scope_ncols + c] = row ? row[k0 + c] : cep_null();
    return cep_program_run(x->prog, op->scope, ev, out);
}

/* ---- the VM ----------------------------------------------------------------- */

static bool work_push(cep_matchop_t *op, uint32_t pc, label_t *lab)
{
    /* merge: the same position with the same mapping already in the list wins */
    for (uint32_t i = 0; i < op->nwork; i++) {
        const thread_t *t = &op->work[i];
        if (t->pc == pc && (t->lab == lab || (t->lab && lab && t->lab->h == lab->h && t->lab->len == lab->len)))
            return true;
    }
    if (op->nwork == op->capwork) {
        uint32_t cap = op->capwork ? op->capwork * 2 : 16;
        thread_t *n = realloc(op->work, cap * sizeof *n);
        if (!n) return false;
        op->work = n;
        op->capwork = cap;
    }
    op->work[op->nwork++] = (thread_t){pc, lab_ref(lab)};
    return true;
}

/* Follow epsilon moves from pc in preference order. Threads stop at VAR
 * and END; reaching MATCH returns true (the caller drops what follows). */
static bool closure(cep_matchop_t *op, uint32_t pc, label_t *lab, bool at_partition_start, label_t **match)
{
    const cep_nfa_insn_t *code = op->m->code;
    if (op->seen[pc]) return false;
    op->seen[pc] = 1;
    switch (code[pc].op) {
    case NFA_VAR:
    case NFA_END: work_push(op, pc, lab); return false;
    case NFA_JMP: return closure(op, code[pc].x, lab, at_partition_start, match);
    case NFA_SPLIT:
        if (closure(op, code[pc].x, lab, at_partition_start, match)) return true;
        return closure(op, code[pc].y, lab, at_partition_start, match);
    case NFA_START: return at_partition_start ? closure(op, pc + 1, lab, at_partition_start, match) : false;
    case NFA_MATCH: *match = lab; return true;
    }
    return false;
}

static void seen_reset(cep_matchop_t *op)
{
    memset(op->seen, 0, op->m->ncode);
}

static void set_error(cep_matchop_t *op, const char *msg)
{
    if (!op->error[0]) snprintf(op->error, sizeof op->error, "%s", msg);
}

static void emit_match(cep_matchop_t *op, part_t *p, const search_t *s, cep_eval_t *ev, cep_emit_fn emit,
                       void *ctx)
{
    const cep_match_plan_t *m = op->m;
    const cep_query_t *q = op->q;
    label_t *lab = s->match;
    uint64_t last = lab ? lab->row : s->start;
    for (uint32_t i = 0; i < m->npartition; i++) op->out[i] = p->keyvals[i];
    for (uint32_t i = 0; i < m->nmeasures; i++) {
        cep_value_t v = cep_null();
        if (!mexpr_eval(op, p, &m->measures[i], lab, last, lab != NULL, ev, &v)) v = cep_null();
        op->out[m->npartition + i] = v;
    }
    const cep_value_t *lr = row_at(p, last);
    cep_output_t o = {.query = q,
                      .sink = q->sink,
                      .cols = op->out,
                      .timestamp = lr ? row_ts(op, lr) : s->start_ts};
    p->match_number++;
    op->stats.matches++;
    emit(ctx, &o);
}

/* Resolve searches in start order: emit final matches, apply AFTER MATCH SKIP. */
static void resolve(cep_matchop_t *op, part_t *p, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_match_plan_t *m = op->m;
    while (p->ns && !op->error[0]) {
        search_t *s = &p->s[0];
        if (s->start < p->next_start) { /* skipped over by an earlier match */
            search_clear(s);
        } else if (s->nth) {
            break; /* a more preferred run is alive: wait */
        } else if (s->has_match && m->absent_var >= 0 && !s->absence_over &&
                   (op->wm == INT64_MIN || op->wm < s->start_ts + m->absent_ms - 1)) {
            break; /* NOT FOLLOWED BY: the window is still open */
        } else if (s->has_match) {
            /* the match is out first; a skip target that cannot work is an error after it */
            emit_match(op, p, s, ev, emit, ctx);
            uint64_t next = s->start + 1;
            if (s->match) {
                uint64_t end = s->match->row;
                if (m->skip == CEP_SKIP_PAST_LAST) next = end + 1;
                else if (m->skip == CEP_SKIP_TO_FIRST || m->skip == CEP_SKIP_TO_LAST) {
                    uint32_t n = mapping(op, s->match, NULL);
                    bool found = false;
                    for (uint32_t j = 0; j < n; j++) {
                        uint32_t at = m->skip == CEP_SKIP_TO_FIRST ? j : n - 1 - j;
                        if (m->skip_vars >> op->tmp[n + at] & 1) {
                            next = op->tmp[at];
                            found = true;
                            break;
                        }
                    }
                    if (!found || next == s->start) {
                        set_error(op, found ? "AFTER MATCH SKIP failed: cannot skip to first row of match"
                                            : "AFTER MATCH SKIP failed: the variable has no row in the match");
                        search_clear(s);
                        memmove(p->s, p->s + 1, --p->ns * sizeof *p->s);
                        return;
                    }
                }
            }
            search_clear(s);
            if (next > p->next_start) p->next_start = next;
        } else {
            /* no match from this row */
            uint64_t next = s->start + 1;
            search_clear(s);
            if (next > p->next_start) p->next_start = next;
        }
        memmove(p->s, p->s + 1, (p->ns - 1) * sizeof *p->s);
        p->ns--;
    }
    part_trim(op, p);
}

/* Feed one row (already appended at index idx) to every search of p. */
static void step(cep_matchop_t *op, part_t *p, uint64_t idx, cep_eval_t *ev)
{
    const cep_match_plan_t *m = op->m;
    const cep_value_t *row = row_at(p, idx);
    int64_t ts = row_ts(op, row);
    op->epoch++;
    /* a new search starts at this row */
    if (idx >= p->next_start) {
        if (p->ns == p->caps) {
            uint32_t cap = p->caps ? p->caps * 2 : 8;
            search_t *n = realloc(p->s, cap * sizeof *n);
            if (!n) return;
            p->s = n;
            p->caps = cap;
        }
        search_t *s = &p->s[p->ns++];
        memset(s, 0, sizeof *s);
        s->start = idx;
        s->start_ts = ts;
        op->nwork = 0;
        seen_reset(op);
        label_t *mt = NULL;
        if (closure(op, 0, NULL, idx == 0, &mt)) s->has_match = true, s->match = NULL; /* the empty match */
        s->th = op->work;
        s->nth = op->nwork;
        s->capth = op->capwork;
        op->work = NULL;
        op->nwork = op->capwork = 0;
    }
    uint64_t live = 0;
    for (uint32_t si = 0; si < p->ns; si++) {
        search_t *s = &p->s[si];
        if (s->start < p->next_start) continue;
        /* NOT FOLLOWED BY: a row after the match, inside the window, cancels it */
        if (m->absent_var >= 0 && s->has_match && s->match && s->match->row < idx && !s->absence_over) {
            if (ts >= s->start_ts + m->absent_ms) {
                s->absence_over = true;
            } else {
                label_t tent = {.parent = s->match, .row = idx, .var = (uint32_t)m->absent_var,
                                .len = s->match->len + 1, .h = 0, .refs = 1};
                cep_value_t r;
                if (mexpr_eval(op, p, &m->define[m->absent_var], &tent, idx, true, ev, &r) &&
                    r.kind == CEP_K_BOOLEAN && r.u.b) {
                    lab_unref(s->match);
                    s->match = NULL;
                    s->has_match = false;
                }
            }
        }
        bool expired = m->within_ms && ts - s->start_ts >= m->within_ms;
        op->nwork = 0;
        for (uint32_t ti = 0; ti < s->nth; ti++) {
            thread_t *t = &s->th[ti];
            const cep_nfa_insn_t *in = &m->code[t->pc];
            if (expired || in->op != NFA_VAR) continue; /* END dies on any row; WITHIN passed */
            uint32_t v = in->x;
            label_t tent = {.parent = t->lab, .row = idx, .var = v, .len = t->lab ? t->lab->len + 1 : 1,
                            .h = lab_hash(t->lab, idx, v), .refs = 1};
            bool ok = true;
            if (m->define[v].prog && !m->define[v].nnavs && op->memo_at[v] == op->epoch) {
                ok = op->memo_val[v];
            } else if (m->define[v].prog) {
                cep_value_t r;
                ok = mexpr_eval(op, p, &m->define[v], &tent, idx, true, ev, &r) && r.kind == CEP_K_BOOLEAN && r.u.b;
                if (!m->define[v].nnavs) op->memo_at[v] = op->epoch, op->memo_val[v] = ok;
            }
            if (!ok) continue;
            label_t *nl = lab_push(t->lab, idx, v);
            if (!nl) continue;
            seen_reset(op);
            label_t *mt = NULL;
            bool matched = closure(op, t->pc + 1, nl, false, &mt);
            if (matched) {
                lab_unref(s->match);
                s->match = lab_ref(mt);
                s->has_match = true;
                lab_unref(nl);
                break; /* less preferred threads can no longer win */
            }
            lab_unref(nl);
        }
        for (uint32_t ti = 0; ti < s->nth; ti++) lab_unref(s->th[ti].lab);
        free(s->th);
        s->th = op->work;
        s->nth = op->nwork;
        s->capth = op->capwork;
        op->work = NULL;
        op->nwork = op->capwork = 0;
        live += s->nth;
    }
    /* searches with no run and no match left cannot produce anything: drop
     * them now, not when they reach the front (a long run at the front
     * would otherwise make every row pay for every dead search behind it) */
    uint32_t keep = 0;
    for (uint32_t si = 0; si < p->ns; si++) {
        search_t *s = &p->s[si];
        if (si > 0 && !s->nth && !s->has_match) {
            search_clear(s);
            continue;
        }
        p->s[keep++] = *s;
    }
    p->ns = keep;
    if (live > op->stats.peak_runs) op->stats.peak_runs = live;
    unsigned bucket = 0;
    while (bucket < 15 && live >= (1ULL << bucket)) bucket++;
    op->stats.runs_hist[bucket]++;
    /* the cap: past max_runs live threads, the oldest searches are dropped */
    while (live > m->max_runs && p->ns > 1) {
        search_t *s = &p->s[0];
        live -= s->nth;
        op->stats.capped_runs += s->nth;
        search_clear(s);
        memmove(p->s, p->s + 1, --p->ns * sizeof *p->s);
        if (p->next_start < p->s[0].start) p->next_start = p->s[0].start;
    }
}

/* Kill threads that no future row can extend within WITHIN. */
static void expire(cep_matchop_t *op, part_t *p, int64_t wm)
{
    const cep_match_plan_t *m = op->m;
    if (!m->within_ms) return;
    for (uint32_t si = 0; si < p->ns; si++) {
        search_t *s = &p->s[si];
        /* the next row has ts > wm */
        if (wm == INT64_MAX || wm + 1 - s->start_ts >= m->within_ms) {
            for (uint32_t ti = 0; ti < s->nth; ti++) lab_unref(s->th[ti].lab);
            s->nth = 0;
        }
    }
}

/* ---- the operator ------------------------------------------------------------- */

static void mark_used(bool *used, uint32_t ncols, const cep_program_t *p)
{
    for (uint32_t i = 0; p && i < p->ncode; i++)
        if (p->code[i].op == OP_COL && p->code[i].a < ncols) used[p->code[i].a] = true;
}

/* ---- checkpoints ---------------------------------------------------------- *
 *
 * A partition is written whole: its key, the rows it still holds, and its
 * searches. Threads share label chains, so the labels are written once
 * each, parents first, and threads name them by number. */

typedef struct labmap {
    const label_t **ptr;
    uint32_t *id;
    uint32_t cap, n;
} labmap_t;

static uint32_t labmap_find(labmap_t *m, const label_t *l, bool *found)
{
    uint32_t mask = m->cap - 1;
    uint32_t i = (uint32_t)cep_hash_mix((uint64_t)(uintptr_t)l) & mask;
    while (m->ptr[i] && m->ptr[i] != l) i = (i + 1) & mask;
    *found = m->ptr[i] != NULL;
    return i;
}

/* Write l's chain (parents first) unless written; its number + 1 (0 = none). */
static uint32_t save_label(labmap_t *m, const label_t *l, cep_buf_t *out, bool *oom)
{
    if (!l) return 0;
    bool found;
    uint32_t i = labmap_find(m, l, &found);
    if (found) return m->id[i] + 1;
    uint32_t parent = save_label(m, l->parent, out, oom);
    if (*oom) return 0;
    i = labmap_find(m, l, &found); /* the parent's turn may have grown the map */
    if ((m->n + 1) * 2 > m->cap) {
        labmap_t g = {calloc(m->cap * 2, sizeof *g.ptr), calloc(m->cap * 2, sizeof *g.id), m->cap * 2, 0};
        if (!g.ptr || !g.id) {
            free(g.ptr);
            free(g.id);
            *oom = true;
            return 0;
        }
        for (uint32_t k = 0; k < m->cap; k++)
            if (m->ptr[k]) {
                bool f;
                uint32_t j = labmap_find(&g, m->ptr[k], &f);
                g.ptr[j] = m->ptr[k];
                g.id[j] = m->id[k];
                g.n++;
            }
        free(m->ptr);
        free(m->id);
        *m = g;
        i = labmap_find(m, l, &found);
    }
    m->ptr[i] = l;
    m->id[i] = m->n++;
    cep_codec_put_u64(out, parent);
    cep_codec_put_u64(out, l->row);
    cep_codec_put_u64(out, l->var);
    return m->id[i] + 1;
}

static void save_row(const cep_matchop_t *op, const cep_value_t *r, cep_buf_t *out)
{
    for (uint32_t c = 0; c < op->row_slots; c++) cep_codec_put_value(out, &r[c]);
}

static cep_value_t *load_row(const cep_matchop_t *op, cep_dec_t *d)
{
    cep_value_t *r = calloc(op->row_slots + 1, sizeof *r);
    if (!r) return NULL;
    for (uint32_t c = 0; c < op->row_slots; c++)
        r[c] = cep_codec_get_value(d, c < op->ncols_used ? op->from->cols[op->cols[c]].type : NULL);
    return r;
}

static bool part_save(void *ctx, const cep_entry_t *e, cep_buf_t *out)
{
    const cep_matchop_t *op = ctx;
    const part_t *p = e->data;
    for (uint32_t i = 0; i < op->m->npartition; i++) cep_codec_put_value(out, &p->keyvals[i]);
    cep_codec_put_u64(out, p->base);
    cep_codec_put_u64(out, p->count);
    cep_codec_put_u64(out, p->next_row);
    cep_codec_put_u64(out, p->next_start);
    cep_codec_put_u64(out, p->match_number);
    for (uint64_t i = 0; i < p->count; i++) save_row(op, p->rows[(p->base + i) % p->cap], out);
    /* labels first (a separate buffer), then the searches that name them */
    cep_buf_t labs, srch;
    cep_buf_init(&labs);
    cep_buf_init(&srch);
    labmap_t m = {calloc(64, sizeof *m.ptr), calloc(64, sizeof *m.id), 64, 0};
    bool oom = !m.ptr || !m.id;
    cep_codec_put_u64(&srch, p->ns);
    for (uint32_t i = 0; i < p->ns && !oom; i++) {
        const search_t *s = &p->s[i];
        cep_codec_put_u64(&srch, s->start);
        cep_codec_put_i64(&srch, s->start_ts);
        cep_codec_put_u64(&srch, s->has_match);
        cep_codec_put_u64(&srch, s->absence_over);
        cep_codec_put_u64(&srch, save_label(&m, s->match, &labs, &oom));
        cep_codec_put_u64(&srch, s->nth);
        for (uint32_t t = 0; t < s->nth; t++) {
            cep_codec_put_u64(&srch, s->th[t].pc);
            cep_codec_put_u64(&srch, save_label(&m, s->th[t].lab, &labs, &oom));
        }
    }
    cep_codec_put_u64(out, m.n);
    cep_buf_put(out, labs.data ? labs.data : "", labs.len);
    cep_buf_put(out, srch.data ? srch.data : "", srch.len);
    free(m.ptr);
    free(m.id);
    cep_buf_free(&labs);
    cep_buf_free(&srch);
    if (oom) out->failed = true;
    return true;
}

static bool part_load(void *ctx, cep_entry_t *e, const char *bytes, size_t n)
{
    cep_matchop_t *op = ctx;
    const cep_match_plan_t *m = op->m;
    cep_dec_t d = cep_codec_reader(bytes, n);
    part_t *p = calloc(1, sizeof *p);
    if (!p) return false;
    e->data = p;
    if (!(p->keyvals = calloc(m->npartition + 1, sizeof *p->keyvals))) return false;
    for (uint32_t i = 0; i < m->npartition; i++) p->keyvals[i] = cep_codec_get_value(&d, m->partition[i]->type);
    uint64_t base = cep_codec_get_u64(&d), count = cep_codec_get_u64(&d);
    p->next_row = cep_codec_get_u64(&d);
    p->next_start = cep_codec_get_u64(&d);
    p->match_number = cep_codec_get_u64(&d);
    if (d.bad || count > (uint64_t)(d.end - d.p) || base + count != p->next_row) return false;
    p->base = base;
    p->next_row = base;
    for (uint64_t i = 0; i < count; i++) {
        cep_value_t *r = load_row(op, &d);
        if (!r || d.bad || !part_append(op, p, r)) {
            if (r) {
                for (uint32_t c = 0; c < op->row_slots; c++) cep_value_free_owned(&r[c]);
                free(r);
            }
            return false;
        }
    }
    if (!count) p->base = p->next_row = base + count;
    uint64_t nlab = cep_codec_get_u64(&d);
    if (d.bad || nlab > (uint64_t)(d.end - d.p)) return false;
    label_t **labs = calloc(nlab + 1, sizeof *labs);
    if (!labs) return false;
    bool ok = true;
    for (uint64_t i = 0; i < nlab && ok; i++) {
        uint64_t parent = cep_codec_get_u64(&d), row = cep_codec_get_u64(&d), var = cep_codec_get_u64(&d);
        label_t *l = malloc(sizeof *l);
        if (d.bad || parent > i || var >= m->nvars || !l) {
            free(l);
            ok = false;
            break;
        }
        label_t *par = parent ? labs[parent - 1] : NULL;
        *l = (label_t){lab_ref(par), row, (uint32_t)var, par ? par->len + 1 : 1, lab_hash(par, row, (uint32_t)var), 1};
        labs[i] = l; /* the array holds one reference until the end */
    }
    uint64_t ns = ok ? cep_codec_get_u64(&d) : 0;
    if (d.bad || ns > (uint64_t)(d.end - d.p)) ok = false;
    if (ok && ns) {
        p->s = calloc(ns, sizeof *p->s);
        p->caps = (uint32_t)ns;
        ok = p->s != NULL;
    }
    for (uint64_t i = 0; ok && i < ns; i++) {
        search_t *s = &p->s[p->ns++];
        s->start = cep_codec_get_u64(&d);
        s->start_ts = cep_codec_get_i64(&d);
        s->has_match = cep_codec_get_bool(&d);
        s->absence_over = cep_codec_get_bool(&d);
        uint64_t ml = cep_codec_get_u64(&d), nth = cep_codec_get_u64(&d);
        if (d.bad || ml > nlab || nth > (uint64_t)(d.end - d.p)) {
            ok = false;
            break;
        }
        s->match = ml ? lab_ref(labs[ml - 1]) : NULL;
        if (nth && !(s->th = calloc(nth, sizeof *s->th))) {
            ok = false;
            break;
        }
        s->capth = (uint32_t)nth;
        for (uint64_t t = 0; t < nth; t++) {
            uint64_t pc = cep_codec_get_u64(&d), lab = cep_codec_get_u64(&d);
            if (d.bad || pc >= m->ncode || lab > nlab) {
                ok = false;
                break;
            }
            s->th[s->nth++] = (thread_t){(uint32_t)pc, lab ? lab_ref(labs[lab - 1]) : NULL};
        }
    }
    for (uint64_t i = 0; i < nlab; i++) lab_unref(labs[i]);
    free(labs);
    return ok && cep_codec_done(&d);
}

/* The operator's own state: its clock, the rows waiting for the
 * watermark, the timers. */
static void meta_save(void *ctx, cep_buf_t *out)
{
    const cep_matchop_t *op = ctx;
    cep_codec_put_u64(out, op->seq);
    cep_codec_put_i64(out, op->wm);
    cep_codec_put_i64(out, op->max_ts);
    cep_codec_put_u64(out, op->npend);
    for (uint32_t i = 0; i < op->npend; i++) {
        cep_codec_put_i64(out, op->pend[i].ts);
        cep_codec_put_u64(out, op->pend[i].seq);
        save_row(op, op->pend[i].v, out);
    }
    cep_codec_put_u64(out, op->ntimers);
    for (uint32_t i = 0; i < op->ntimers; i++) {
        cep_codec_put_i64(out, op->timers[i].due);
        cep_codec_put_bytes(out, op->timers[i].key, op->timers[i].klen);
    }
}

static bool meta_load(void *ctx, const char *bytes, size_t n)
{
    cep_matchop_t *op = ctx;
    cep_dec_t d = cep_codec_reader(bytes, n);
    op->seq = cep_codec_get_u64(&d);
    op->wm = cep_codec_get_i64(&d);
    op->max_ts = cep_codec_get_i64(&d);
    uint64_t np = cep_codec_get_u64(&d);
    if (d.bad || np > (uint64_t)(d.end - d.p)) return false;
    for (uint64_t i = 0; i < np && !d.bad; i++) {
        int64_t ts = cep_codec_get_i64(&d);
        uint64_t seq = cep_codec_get_u64(&d);
        cep_value_t *v = load_row(op, &d);
        if (!v) return false;
        if (op->npend == op->cappend) {
            uint32_t cap = op->cappend ? op->cappend * 2 : 64;
            pending_row_t *pn = realloc(op->pend, cap * sizeof *pn);
            if (!pn) {
                for (uint32_t c = 0; c < op->row_slots; c++) cep_value_free_owned(&v[c]);
                free(v);
                return false;
            }
            op->pend = pn;
            op->cappend = cap;
        }
        op->pend[op->npend++] = (pending_row_t){ts, seq, v};
    }
    uint64_t nt = cep_codec_get_u64(&d);
    if (d.bad || nt > (uint64_t)(d.end - d.p)) return false;
    for (uint64_t i = 0; i < nt && !d.bad; i++) {
        int64_t due = cep_codec_get_i64(&d);
        size_t klen;
        const char *key = cep_codec_get_bytes(&d, &klen);
        if (!d.bad) timer_add(op, due, key, (uint32_t)klen);
    }
    return cep_codec_done(&d);
}

static uint64_t hash_str(const char *t, uint64_t h)
{
    return t ? cep_hash_bytes(t, strlen(t), h) : cep_hash_mix(h + 1);
}

/* What the state depends on: the rule (its name keeps two equal rules
 * apart), its input, partitioning, ordering, pattern, DEFINEs and the
 * columns its rows keep (MEASURES read them), skip, WITHIN and absence.
 * Not its metadata (SEVERITY, TAGS...) nor its output topic: changing those
 * keeps runs in flight. */
uint64_t cep_matchop_state_fingerprint(const cep_query_t *q)
{
    const cep_match_plan_t *m = q->match;
    uint64_t h = hash_str(q->name, 0x4d415443480000ULL);
    h = hash_str(m->from->name, h);
    for (uint32_t i = 0; i < m->npartition; i++) h = hash_str(m->partition[i]->text, h);
    for (uint32_t i = 0; i < m->norder; i++) h = hash_str(m->order[i]->text, h ^ 1);
    h = hash_str(m->pattern_text, h);
    for (uint32_t i = 0; i < m->nvars; i++) h = hash_str(m->define_text[i], hash_str(m->vars[i], h));
    for (uint32_t i = 0; i < m->nmeasures; i++) h = hash_str(m->measure_text[i], h ^ 2);
    int64_t k[6] = {(int64_t)m->skip, (int64_t)m->skip_vars, m->within_ms, m->absent_var, m->absent_ms,
                    (int64_t)m->max_runs};
    return cep_hash_bytes(k, sizeof k, h);
}

cep_matchop_t *cep_matchop_new(const cep_query_t *q, cep_store_t *store)
{
    cep_matchop_t *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    op->q = q;
    op->m = q->match;
    op->from = q->from;
    op->row_slots = 0; /* set once the used columns are known */
    op->wm = INT64_MIN;
    op->max_ts = INT64_MIN;
    op->delay = -1;
    op->parts = cep_store_table(store, cep_origin_fp(cep_matchop_state_fingerprint(q), q->origin), q->name, part_free, op);
    op->scope = calloc(op->m->scope_ncols + CEP_PSEUDO_COUNT + 1, sizeof *op->scope);
    op->out = calloc(q->sink->ncols + 1, sizeof *op->out);
    op->seen = calloc(op->m->ncode + 1, 1);
    op->memo_at = calloc(op->m->nvars + 1, sizeof *op->memo_at);
    op->memo_val = calloc(op->m->nvars + 1, sizeof *op->memo_val);
    op->epoch = 1;
    op->used = calloc(op->from->ncols + 1, sizeof *op->used);
    cep_buf_init(&op->keybuf);
    if (!op->parts || !op->scope || !op->out || !op->seen || !op->used || !op->memo_at || !op->memo_val) {
        cep_matchop_free(op);
        return NULL;
    }
    {
        const cep_match_plan_t *m = op->m;
        uint32_t n = op->from->ncols;
        for (uint32_t i = 0; i < m->npartition; i++) mark_used(op->used, n, m->partition[i]);
        for (uint32_t i = 0; i < m->norder; i++) mark_used(op->used, n, m->order[i]);
        for (uint32_t i = 0; i < m->nnavs; i++) mark_used(op->used, n, m->navs[i].inner);
        for (uint32_t i = 0; i < m->nvars; i++) mark_used(op->used, n, m->define[i].prog);
        for (uint32_t i = 0; i < m->nmeasures; i++) mark_used(op->used, n, m->measures[i].prog);
        op->cols = calloc(n + 1, sizeof *op->cols);
        op->full = calloc(q->from->nslots + 1, sizeof *op->full);
        if (!op->cols || !op->full) {
            cep_matchop_free(op);
            return NULL;
        }
        for (uint32_t c = 0; c < n; c++)
            if (op->used[c]) op->cols[op->ncols_used++] = c;
        op->row_slots = op->ncols_used + CEP_PSEUDO_COUNT;
        /* `^` needs to know a partition's first row ever, PREV its history */
        op->forgetful = !m->max_prev;
        for (uint32_t i = 0; i < m->ncode; i++)
            if (m->code[i].op == NFA_START) op->forgetful = false;
    }
    cep_table_codec_t c = {.save = part_save, .load = part_load, .save_meta = meta_save, .load_meta = meta_load, .ctx = op};
    cep_table_set_codec(op->parts, &c);
    return op;
}

cep_table_t *cep_matchop_table(const cep_matchop_t *op)
{
    return op->parts;
}

void cep_matchop_free(cep_matchop_t *op)
{
    if (!op) return;
    for (uint32_t i = 0; i < op->npend; i++) {
        for (uint32_t c = 0; c < op->row_slots; c++) cep_value_free_owned(&op->pend[i].v[c]);
        free(op->pend[i].v);
    }
    free(op->pend);
    for (uint32_t i = 0; i < op->ntimers; i++) free(op->timers[i].key);
    free(op->timers);
    free(op->scope);
    free(op->out);
    free(op->seen);
    free(op->used);
    free(op->memo_at);
    free(op->memo_val);
    free(op->cols);
    free(op->full);
    free(op->tmp);
    free(op->work);
    cep_buf_free(&op->keybuf);
    free(op);
}

void cep_matchop_set_delay(cep_matchop_t *op, int64_t delay)
{
    op->delay = delay;
}

const char *cep_matchop_error(const cep_matchop_t *op)
{
    return op->error[0] ? op->error : NULL;
}

const cep_match_stats_t *cep_matchop_stats(const cep_matchop_t *op)
{
    return &op->stats;
}

/* Partition key bytes: kind, then the payload (strings with their length). */
static void encode_value(cep_buf_t *b, const cep_value_t *v)
{
    cep_buf_putc(b, (char)v->kind);
    switch (v->kind) {
    case CEP_K_NULL: break;
    case CEP_K_STRING:
    case CEP_K_BYTES: {
        uint32_t n = (uint32_t)v->u.s.n;
        cep_buf_put(b, &n, sizeof n);
        cep_buf_put(b, v->u.s.p, v->u.s.n);
        break;
    }
    case CEP_K_BOOLEAN: cep_buf_putc(b, v->u.b ? 1 : 0); break;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_DOUBLE:
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: cep_buf_put(b, &v->u, sizeof v->u.i); break;
    default: /* composite keys are rare: their JSON text is canonical enough */
        cep_value_to_json(v, b);
        cep_buf_putc(b, 0);
        break;
    }
}

/* Could this row start a match in a partition with no history? Its first
 * variables' DEFINE, tried on it alone (no PREV can reach back then). */
static bool can_start(cep_matchop_t *op, cep_value_t *row, cep_eval_t *ev)
{
    const cep_match_plan_t *m = op->m;
    part_t tmp = {.rows = &row, .base = 0, .count = 1, .cap = 1, .next_row = 1};
    op->nwork = 0;
    seen_reset(op);
    label_t *mt = NULL;
    bool yes = closure(op, 0, NULL, true, &mt);
    for (uint32_t i = 0; i < op->nwork && !yes; i++) {
        const cep_nfa_insn_t *in = &m->code[op->work[i].pc];
        if (in->op != NFA_VAR) continue;
        if (!m->define[in->x].prog) {
            yes = true;
            break;
        }
        label_t tent = {.row = 0, .var = in->x, .len = 1, .refs = 1};
        cep_value_t r;
        yes = mexpr_eval(op, &tmp, &m->define[in->x], &tent, 0, true, ev, &r) && r.kind == CEP_K_BOOLEAN && r.u.b;
    }
    op->nwork = 0; /* the threads hold no labels: nothing to release */
    return yes;
}

static part_t *partition_of(cep_matchop_t *op, cep_value_t *row, cep_eval_t *ev)
{
    const cep_match_plan_t *m = op->m;
    cep_value_t kv[64];
    if (m->npartition > 64) return NULL;
    cep_buf_reset(&op->keybuf);
    for (uint32_t i = 0; i < m->npartition; i++) {
        if (!cep_program_run(m->partition[i], expand(op, row), ev, &kv[i])) kv[i] = cep_null();
        encode_value(&op->keybuf, &kv[i]);
    }
    uint64_t h = cep_hash_bytes(op->keybuf.data ? op->keybuf.data : "", op->keybuf.len, 0);
    /* a row that cannot start a match needs no partition of its own */
    if (op->forgetful && !cep_table_get(op->parts, op->keybuf.data ? op->keybuf.data : "", op->keybuf.len, h) &&
        !can_start(op, row, ev))
        return NULL;
    bool created = false;
    cep_entry_t *e = cep_table_upsert(op->parts, op->keybuf.data ? op->keybuf.data : "", op->keybuf.len, h, &created);
    if (!e) return NULL;
    if (created) {
        part_t *p = calloc(1, sizeof *p);
        if (p) p->keyvals = calloc(m->npartition + 1, sizeof *p->keyvals);
        if (!p || !p->keyvals) {
            free(p);
            cep_table_remove(op->parts, e);
            return NULL;
        }
        for (uint32_t i = 0; i < m->npartition; i++) p->keyvals[i] = cep_value_clone(&kv[i]);
        e->data = p;
    }
    cep_table_touch(op->parts, e);
    return e->data;
}

typedef struct sort_ctx {
    cep_matchop_t *op;
    cep_eval_t *ev;
} sort_ctx_t;

static int pend_cmp(const void *pa, const void *pb, void *arg)
{
    const pending_row_t *a = pa, *b = pb;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    sort_ctx_t *sc = arg;
    cep_eval_t *sort_ev = sc->ev;
    const cep_match_plan_t *m = sc->op->m;
    for (uint32_t k = 0; k < m->norder; k++) {
        cep_value_t x, y;
        if (!cep_program_run(m->order[k], expand(sc->op, a->v), sort_ev, &x)) x = cep_null();
        if (!cep_program_run(m->order[k], expand(sc->op, b->v), sort_ev, &y)) y = cep_null();
        int c = cep_value_cmp(&x, &y);
        if (c) return c;
    }
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A partition with no run, no row kept and no match yet is nothing but its
 * key: release it (MATCH_NUMBER keeps counting in partitions that matched). */
static void release_if_idle(cep_matchop_t *op, part_t *p, const char *key, uint32_t klen)
{
    if (!op->forgetful || p->ns || p->count || p->match_number) return;
    cep_entry_t *e = cep_table_get(op->parts, key, klen, cep_hash_bytes(key, klen, 0));
    if (e && e->data == p) cep_table_remove(op->parts, e);
}

static void feed(cep_matchop_t *op, cep_value_t *row, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    part_t *p = partition_of(op, row, ev);
    op->stats.rows++;
    if (!p || !part_append(op, p, row)) {
        for (uint32_t c = 0; c < op->row_slots; c++) cep_value_free_owned(&row[c]);
        free(row);
        return;
    }
    if (op->error[0]) return;
    uint64_t idx = p->next_row - 1;
    step(op, p, idx, ev);
    /* a search this row started and kept alive, or a match now held by NOT
     * FOLLOWED BY, needs the watermark when its time bound passes */
    const cep_match_plan_t *m = op->m;
    if (p->ns && (m->within_ms || m->absent_var >= 0)) {
        search_t *s = &p->s[p->ns - 1];
        if (s->start == idx && (s->nth || s->has_match)) {
            int64_t bound = m->within_ms ? m->within_ms : m->absent_ms;
            if (m->absent_var >= 0 && m->absent_ms > bound) bound = m->absent_ms;
            timer_add(op, s->start_ts + bound - 1, op->keybuf.data ? op->keybuf.data : "", (uint32_t)op->keybuf.len);
        }
    }
    resolve(op, p, ev, emit, ctx);
    release_if_idle(op, p, op->keybuf.data ? op->keybuf.data : "", (uint32_t)op->keybuf.len);
}

static void visit_expire(void *ctx, cep_entry_t *e)
{
    cep_matchop_t *op = ctx;
    expire(op, e->data, op->wm);
}

typedef struct keys {
    cep_entry_t **e;
    size_t n, cap;
} keys_t;

static void collect_key(void *ctx, cep_entry_t *e)
{
    keys_t *k = ctx;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        cep_entry_t **g = realloc(k->e, cap * sizeof *g);
        if (!g) return;
        k->e = g;
        k->cap = cap;
    }
    k->e[k->n++] = e;
}

static int key_cmp(const void *pa, const void *pb)
{
    const cep_entry_t *a = *(cep_entry_t *const *)pa, *b = *(cep_entry_t *const *)pb;
    int c = memcmp(a->key, b->key, CEP_MIN(a->klen, b->klen));
    return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

typedef struct resolve_ctx {
    cep_matchop_t *op;
    cep_eval_t *ev;
    cep_emit_fn emit;
    void *ctx;
} resolve_ctx_t;

static void visit_resolve(void *ctx, cep_entry_t *e)
{
    resolve_ctx_t *r = ctx;
    resolve(r->op, e->data, r->ev, r->emit, r->ctx);
}

void cep_matchop_watermark(cep_matchop_t *op, int64_t wm, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    if (wm <= op->wm) return;
    op->wm = wm;
    /* the rows the watermark passes, in order */
    uint32_t n = 0;
    for (uint32_t i = 0; i < op->npend; i++)
        if (op->pend[i].ts <= wm) {
            pending_row_t t = op->pend[n];
            op->pend[n++] = op->pend[i];
            op->pend[i] = t;
        }
    if (n) {
        sort_ctx_t sc = {op, ev};
        qsort_r(op->pend, n, sizeof *op->pend, pend_cmp, &sc);
        pending_row_t *ready = malloc(n * sizeof *ready);
        if (ready) {
            memcpy(ready, op->pend, n * sizeof *ready);
            memmove(op->pend, op->pend + n, (op->npend - n) * sizeof *op->pend);
            op->npend -= n;
            for (uint32_t i = 0; i < n; i++) feed(op, ready[i].v, ev, emit, ctx);
            free(ready);
        }
    }
    /* the partitions whose time bounds the watermark has passed, in time order */
    while (op->ntimers && op->timers[0].due <= wm) {
        timer_t_ t = timer_pop(op);
        uint64_t h = cep_hash_bytes(t.key, t.klen, 0);
        cep_entry_t *e = cep_table_get(op->parts, t.key, t.klen, h);
        if (e && e->data) {
            expire(op, e->data, wm);
            resolve(op, e->data, ev, emit, ctx);
            release_if_idle(op, e->data, t.key, t.klen);
        }
        free(t.key);
    }
    if (wm == INT64_MAX) { /* the end of input: every partition, in key order (not the table's) */
        keys_t k = {0};
        cep_table_foreach(op->parts, collect_key, &k);
        if (k.n > 1) qsort(k.e, k.n, sizeof *k.e, key_cmp);
        resolve_ctx_t r = {op, ev, emit, ctx};
        for (size_t i = 0; i < k.n; i++) {
            visit_expire(op, k.e[i]);
            visit_resolve(&r, k.e[i]);
        }
        free(k.e);
    }
}

void cep_matchop_push(cep_matchop_t *op, const cep_value_t *row, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    int64_t ts = row[op->from->ncols + CEP_PSEUDO_ROWTIME].u.i;
    if (op->wm != INT64_MIN && ts <= op->wm) {
        op->stats.late++;
        return;
    }
    if (op->npend == op->cappend) {
        uint32_t cap = op->cappend ? op->cappend * 2 : 64;
        pending_row_t *n = realloc(op->pend, cap * sizeof *n);
        if (!n) return;
        op->pend = n;
        op->cappend = cap;
    }
    cep_value_t *v = malloc(op->row_slots * sizeof *v);
    if (!v) return;
    uint32_t nin = op->from->ncols;
    for (uint32_t j = 0; j < op->ncols_used; j++) v[j] = cep_value_clone(&row[op->cols[j]]);
    for (uint32_t c = 0; c < CEP_PSEUDO_COUNT; c++) v[op->ncols_used + c] = cep_value_clone(&row[nin + c]);
    op->pend[op->npend++] = (pending_row_t){ts, op->seq++, v};
    if (ts > op->max_ts) op->max_ts = ts;
    /* several source partitions: follow their common progress, not this row's */
    int64_t basis = ev->has_watermark ? ev->watermark : op->max_ts;
    if (op->delay >= 0 && basis > INT64_MIN + op->delay + 1)
        cep_matchop_watermark(op, basis - op->delay - 1, ev, emit, ctx);
}
