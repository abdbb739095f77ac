/*
 * report.c — the backtest's HTML page (backtest.h: cep_backtest_html),
 * made from the JSON report so the two never disagree. One file, no
 * network: inline CSS, inline SVG charts, no script. Every figure a test
 * or a script may want to read carries its raw value in data-v.
 */
#include "engine/backtest.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL
#define TIMELINE_RULES 8 /* past nine rules, the timeline draws this many on their own, the rest as "other rules" */

static const char *const palette[] = {"#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed",
                                      "#0891b2", "#db2777", "#65a30d", "#94a3b8"};

/* ---- text --------------------------------------------------------------------------- */

static void esc(cep_buf_t *o, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': cep_buf_puts(o, "&amp;"); break;
        case '<': cep_buf_puts(o, "&lt;"); break;
        case '>': cep_buf_puts(o, "&gt;"); break;
        case '"': cep_buf_puts(o, "&quot;"); break;
        case '\'': cep_buf_puts(o, "&#39;"); break;
        default: cep_buf_putc(o, *s);
        }
    }
}

/* 1234567 -> "1,234,567" */
static void grouped(cep_buf_t *o, long long v)
{
    char d[32];
    int n = snprintf(d, sizeof d, "%lld", v < 0 ? -v : v);
    if (v < 0) cep_buf_putc(o, '-');
    for (int i = 0; i < n; i++) {
        cep_buf_putc(o, d[i]);
        if ((n - i - 1) % 3 == 0 && i < n - 1) cep_buf_putc(o, ',');
    }
}

static void utc(cep_buf_t *o, long long ms, const char *fmt)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    char s[48];
    gmtime_r(&t, &tm);
    strftime(s, sizeof s, fmt, &tm);
    cep_buf_puts(o, s);
}

static long long ival(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* a ratio cell's text: "0.87" or "–" when there is none */
static void ratio_text(cep_buf_t *o, const json_t *v)
{
    if (json_is_number(v)) cep_buf_printf(o, "%.2f", json_number_value(v));
    else cep_buf_puts(o, "&ndash;");
}

static void ratio_attr(cep_buf_t *o, const json_t *v)
{
    if (json_is_number(v)) cep_buf_printf(o, "%.6g", json_number_value(v));
    else cep_buf_puts(o, "null");
}

/* <td class="num" data-k="k" data-v="v">v grouped</td> */
static void num_cell(cep_buf_t *o, const char *k, long long v)
{
    cep_buf_printf(o, "<td class=\"num\" data-k=\"%s\" data-v=\"%lld\">", k, v);
    grouped(o, v);
    cep_buf_puts(o, "</td>");
}

/* a ratio as a cell with a small bar under the number */
static void ratio_cell(cep_buf_t *o, const char *k, const json_t *v, const char *color)
{
    cep_buf_printf(o, "<td class=\"num\" data-k=\"%s\" data-v=\"", k);
    ratio_attr(o, v);
    cep_buf_puts(o, "\">");
    ratio_text(o, v);
    if (json_is_number(v))
        cep_buf_printf(o,
                       "<svg class=\"minibar\" width=\"60\" height=\"4\" role=\"img\" aria-hidden=\"true\">"
                       "<rect width=\"60\" height=\"4\" fill=\"#e5e7eb\"/><rect width=\"%.1f\" height=\"4\" "
                       "fill=\"%s\"/></svg>",
                       60.0 * fmin(fmax(json_number_value(v), 0), 1), color);
    cep_buf_puts(o, "</td>");
}

/* ---- the page's parts ---------------------------------------------------------------- */

static const char style[] =
    "*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#111827;background:#f8fafc}main{max-width:1080px;margin:0 auto;padding:24px}"
    "header{background:#0f172a;color:#f8fafc;padding:28px 24px}header div{max-width:1080px;margin:0 auto}"
    "header h1{margin:0 0 6px;font-size:22px;font-weight:600}header p{margin:0;color:#cbd5e1}"
    "code{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace}"
    "h2{font-size:17px;margin:32px 0 10px}section{background:#fff;border:1px solid #e5e7eb;border-radius:10px;"
    "padding:16px 18px;margin:18px 0}section>h2{margin-top:0}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;background:none;"
    "border:0;padding:0}.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:12px 14px}"
    ".card b{display:block;font-size:20px;font-weight:650;white-space:nowrap}.card span{color:#6b7280;font-size:12px;"
    "text-transform:uppercase;letter-spacing:.04em}"
    "table{border-collapse:collapse;width:100%}th,td{padding:6px 8px;border-bottom:1px solid #f1f5f9;"
    "text-align:left;vertical-align:middle}th{font-size:12px;color:#6b7280;font-weight:600}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.minibar{display:block;margin:3px 0 0 auto}"
    ".badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:11px;font-weight:600}"
    ".sev-critical{background:#fee2e2;color:#991b1b}.sev-high{background:#ffedd5;color:#9a3412}"
    ".sev-medium{background:#fef9c3;color:#854d0e}.sev-low{background:#e0f2fe;color:#075985}"
    ".shadow{background:#ede9fe;color:#5b21b6}.ch-added{color:#15803d}.ch-removed{color:#b91c1c}"
    ".ch-changed{color:#b45309}.ch-same{color:#6b7280}.legend{display:flex;flex-wrap:wrap;gap:6px 14px;"
    "margin:8px 0 0;font-size:12px;color:#374151}.legend i{display:inline-block;width:10px;height:10px;"
    "border-radius:2px;margin-right:5px;vertical-align:-1px}details{border-top:1px solid #f1f5f9;padding:8px 0}"
    "summary{cursor:pointer;font-weight:600}pre{background:#f8fafc;border:1px solid #e5e7eb;border-radius:6px;"
    "padding:8px;overflow:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}"
    ".muted{color:#6b7280}footer{color:#9ca3af;font-size:12px;text-align:center;padding:20px}"
    "svg text{font:11px system-ui,sans-serif;fill:#6b7280}";

static void cards(cep_buf_t *o, const json_t *rep)
{
    const json_t *rules = json_object_get(rep, "rules"), *r;
    long long alerts = 0, truths = 0, fired = 0, nrules = (long long)json_array_size(rules);
    size_t i;
    json_array_foreach(rules, i, r) {
        alerts += ival(r, "alerts");
        truths += ival(r, "true_alerts");
        fired += ival(r, "alerts") > 0;
    }
    cep_buf_puts(o, "<section class=\"cards\">");
    cep_buf_printf(o, "<div class=\"card\" data-k=\"events\" data-v=\"%lld\"><b>", ival(rep, "events"));
    grouped(o, ival(rep, "events"));
    cep_buf_puts(o, "</b><span>events replayed</span></div>");
    cep_buf_printf(o, "<div class=\"card\" data-k=\"alerts\" data-v=\"%lld\"><b>", alerts);
    grouped(o, alerts);
    cep_buf_puts(o, "</b><span>alerts</span></div>");
    cep_buf_printf(o, "<div class=\"card\" data-k=\"rules_fired\" data-v=\"%lld\"><b>%lld of %lld</b>"
                      "<span>rules fired</span></div>",
                   fired, fired, nrules);
    const json_t *scen = json_object_get(rep, "scenarios");
    if (scen) {
        long long inst = 0, caught = 0, value = 0, cvalue = 0;
        const char *k;
        json_t *s;
        json_object_foreach((json_t *)scen, k, s) {
            inst += ival(s, "instances");
            caught += ival(s, "caught");
            value += ival(s, "value_minor");
            cvalue += ival(s, "caught_value_minor");
        }
        json_t *p = alerts ? json_real((double)truths / (double)alerts) : json_null();
        json_t *rc = inst ? json_real((double)caught / (double)inst) : json_null();
        cep_buf_puts(o, "<div class=\"card\" data-k=\"precision\" data-v=\"");
        ratio_attr(o, p);
        cep_buf_puts(o, "\"><b>");
        ratio_text(o, p);
        cep_buf_puts(o, "</b><span>precision (all alerts)</span></div>");
        cep_buf_printf(o, "<div class=\"card\" data-k=\"caught\" data-v=\"%lld\"><b>%lld of %lld</b>"
                          "<span>fraud instances caught</span></div>",
                       caught, caught, inst);
        cep_buf_printf(o, "<div class=\"card\" data-k=\"caught_value_minor\" data-v=\"%lld\"><b>", cvalue);
        grouped(o, cvalue / 100);
        cep_buf_puts(o, "</b><span>fraud value caught, of ");
        grouped(o, value / 100);
        cep_buf_puts(o, "</span></div>");
        json_decref(p);
        json_decref(rc);
    }
    cep_buf_printf(o, "<div class=\"card\" data-k=\"dead_letters\" data-v=\"%lld\"><b>", ival(rep, "dead_letters"));
    grouped(o, ival(rep, "dead_letters"));
    cep_buf_puts(o, "</b><span>dead letters</span></div></section>\n");
}

static const char *step_name(long long step)
{
    switch (step) {
    case 60000LL: return "minute";
    case 300000LL: return "5 minutes";
    case 900000LL: return "15 minutes";
    case 1800000LL: return "30 minutes";
    case HOUR_MS: return "hour";
    case 3 * HOUR_MS: return "3 hours";
    case 6 * HOUR_MS: return "6 hours";
    case 12 * HOUR_MS: return "12 hours";
    case DAY_MS: return "day";
    case 7 * DAY_MS: return "week";
    default: return "period";
    }
}

/* Alerts over event time: stacked bars, one per timeline bucket, the
 * busiest rules each in its colour, the rest together. */
static void timeline(cep_buf_t *o, const json_t *rep)
{
    const json_t *tl = json_object_get(rep, "timeline"), *rules = json_object_get(rep, "rules");
    cep_buf_puts(o, "<section id=\"timeline\"><h2>Alerts over event time</h2>");
    if (!tl || json_is_null(tl) || !json_array_size(rules)) {
        cep_buf_puts(o, "<p class=\"muted\">No events.</p></section>\n");
        return;
    }
    long long b0 = ival(tl, "from"), step = ival(tl, "step_ms"), nb = ival(tl, "buckets");
    /* the rules that fired, busiest first */
    size_t nr = json_array_size(rules), nshow = 0;
    size_t *order = calloc(nr + 1, sizeof *order);
    long long *cnt = calloc((size_t)nb * (TIMELINE_RULES + 1) + 1, sizeof *cnt);
    if (!order || !cnt) {
        free(order);
        free(cnt);
        cep_buf_puts(o, "</section>\n");
        return;
    }
    for (size_t i = 0; i < nr; i++)
        if (ival(json_array_get(rules, i), "alerts") > 0) order[nshow++] = i;
    for (size_t i = 1; i < nshow; i++)
        for (size_t k = i; k > 0 && ival(json_array_get(rules, order[k]), "alerts") >
                                        ival(json_array_get(rules, order[k - 1]), "alerts");
             k--) {
            size_t t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    /* each rule its colour while the palette lasts, else the busiest and "other rules" */
    size_t own = nshow <= TIMELINE_RULES + 1 ? nshow : TIMELINE_RULES;
    size_t ncolors = own + (nshow > own);
    for (size_t i = 0; i < nshow; i++) {
        size_t c = i < own ? i : own;
        const json_t *counts = json_object_get(json_array_get(rules, order[i]), "timeline");
        for (long long b = 0; b < nb && b < (long long)json_array_size(counts); b++)
            cnt[b * (long long)ncolors + (long long)c] += json_integer_value(json_array_get(counts, (size_t)b));
    }
    long long peak = 1;
    for (long long b = 0; b < nb; b++) {
        long long sum = 0;
        for (size_t c = 0; c < ncolors; c++) sum += cnt[b * (long long)ncolors + (long long)c];
        if (sum > peak) peak = sum;
    }
    /* four grid steps of 1, 2 or 5 times a power of ten */
    long long tick = 0;
    for (long long mag = 1; !tick; mag *= 10)
        tick = mag * 4 >= peak ? mag : mag * 8 >= peak ? 2 * mag : mag * 20 >= peak ? 5 * mag : 0;
    peak = tick * 4;
    const double W = 1000, H = 240, L = 44, R = 8, T = 10, B = 28;
    double bw = (W - L - R) / (double)nb;
    bool daily = step >= DAY_MS;
    cep_buf_printf(o,
                   "<svg id=\"timeline-chart\" viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\" "
                   "aria-label=\"alerts per %s over event time\" data-buckets=\"%lld\" data-step-ms=\"%lld\">",
                   W, H, step_name(step), nb, step);
    for (int g = 0; g <= 4; g++) { /* grid and counts */
        double y = T + (H - T - B) * (1 - g / 4.0);
        cep_buf_printf(o, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eef2f7\"/>", L, W - R, y, y);
        cep_buf_printf(o, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>", L - 6, y + 4,
                       (double)peak * g / 4.0);
    }
    for (long long b = 0; b < nb; b++) {
        double y = H - B;
        for (size_t c = 0; c < ncolors; c++) {
            long long v = cnt[b * (long long)ncolors + (long long)c];
            if (!v) continue;
            double h = (H - T - B) * (double)v / (double)peak;
            y -= h;
            cep_buf_printf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>",
                           L + (double)b * bw, y, bw > 2 ? bw - 1 : bw, h, palette[c]);
            utc(o, b0 + b * step, daily ? "%Y-%m-%d" : "%Y-%m-%d %H:%M");
            cep_buf_puts(o, " ");
            if (c < own) esc(o, json_string_value(json_object_get(json_array_get(rules, order[c]), "rule")));
            else cep_buf_puts(o, "other rules");
            cep_buf_printf(o, ": %lld</title></rect>", v);
        }
    }
    int ticks = (int)(nb < 7 ? nb : 7);
    for (int t = 0; t < ticks; t++) {
        long long b = ticks > 1 ? (nb - 1) * t / (ticks - 1) : 0;
        cep_buf_printf(o, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"%s\">", L + ((double)b + 0.5) * bw, H - 8,
                       t == 0 ? "start" : t == ticks - 1 ? "end" : "middle");
        utc(o, b0 + b * step, daily ? "%b %d" : "%b %d %H:%M");
        cep_buf_puts(o, "</text>");
    }
    cep_buf_puts(o, "</svg><div class=\"legend\">");
    for (size_t i = 0; i < ncolors; i++) {
        cep_buf_printf(o, "<span><i style=\"background:%s\"></i>", palette[i]);
        if (i < own) esc(o, json_string_value(json_object_get(json_array_get(rules, order[i]), "rule")));
        else cep_buf_printf(o, "%zu other rules", nshow - own);
        cep_buf_puts(o, "</span>");
    }
    cep_buf_printf(o, "</div><p class=\"muted\">One bar per %s of event time (UTC); hover a bar for its count.</p>",
                   step_name(step));
    cep_buf_puts(o, "</section>\n");
    free(cnt);
    free(order);
}

/* Precision and recall per rule, as paired horizontal bars. */
static void quality(cep_buf_t *o, const json_t *rep)
{
    const json_t *rules = json_object_get(rep, "rules"), *r;
    if (!json_object_get(rep, "scenarios")) return;
    size_t i, n = 0;
    json_array_foreach(rules, i, r) n += ival(r, "alerts") > 0 || json_is_number(json_object_get(r, "recall"));
    cep_buf_puts(o, "<section id=\"quality\"><h2>Precision and recall per rule</h2>");
    const double W = 1000, row = 30, L = 250, R = 60;
    cep_buf_printf(o, "<svg id=\"quality-chart\" viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\" "
                      "aria-label=\"precision and recall per rule\">",
                   W, row * (double)n + 24);
    double y = 4;
    json_array_foreach(rules, i, r) {
        if (!(ival(r, "alerts") > 0 || json_is_number(json_object_get(r, "recall")))) continue;
        cep_buf_printf(o, "<g data-rule=\"");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_printf(o, "\"><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" style=\"fill:#111827\">", L - 10, y + 15);
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "</text>");
        const char *what[2] = {"precision", "recall"}, *col[2] = {"#2563eb", "#16a34a"};
        for (int k = 0; k < 2; k++) {
            const json_t *v = json_object_get(r, what[k]);
            double f = json_is_number(v) ? fmin(fmax(json_number_value(v), 0), 1) : 0;
            double yy = y + 3 + k * 11;
            cep_buf_printf(o, "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"9\" fill=\"#f1f5f9\"/>", L, yy,
                           W - L - R);
            cep_buf_printf(o, "<rect class=\"%s\" x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"9\" fill=\"%s\" "
                              "data-v=\"",
                           what[k], L, yy, (W - L - R) * f, col[k]);
            ratio_attr(o, v);
            cep_buf_printf(o, "\"><title>%s ", what[k]);
            ratio_text(o, v);
            cep_buf_printf(o, "</title></rect><text x=\"%.0f\" y=\"%.1f\">", W - R + 6, yy + 8);
            ratio_text(o, v);
            cep_buf_puts(o, "</text>");
        }
        cep_buf_puts(o, "</g>");
        y += row;
    }
    cep_buf_printf(o, "</svg><div class=\"legend\"><span><i style=\"background:#2563eb\"></i>precision: alerts that "
                      "cover a labeled fraud event</span><span><i style=\"background:#16a34a\"></i>recall: instances "
                      "of the rule's tagged scenarios it caught</span></div></section>\n");
}

static void badge_severity(cep_buf_t *o, const json_t *r)
{
    const char *sev = json_string_value(json_object_get(r, "severity"));
    if (sev) {
        cep_buf_puts(o, "<span class=\"badge sev-");
        esc(o, sev);
        cep_buf_puts(o, "\">");
        esc(o, sev);
        cep_buf_puts(o, "</span>");
    }
    const char *mode = json_string_value(json_object_get(r, "mode"));
    if (mode && !strcmp(mode, "shadow")) cep_buf_puts(o, " <span class=\"badge shadow\">shadow</span>");
}

/* a rule's alerts over time, tiny (the timeline's buckets) */
static void sparkline(cep_buf_t *o, const json_t *r)
{
    const json_t *tl = json_object_get(r, "timeline");
    size_t n = json_array_size(tl), k;
    const json_t *v;
    long long peak = 0;
    json_array_foreach(tl, k, v) if (json_integer_value(v) > peak) peak = json_integer_value(v);
    if (!peak) return;
    cep_buf_puts(o, "<svg width=\"120\" height=\"22\" aria-hidden=\"true\">");
    double w = 120.0 / (double)n;
    json_array_foreach(tl, k, v) {
        if (!json_integer_value(v)) continue;
        double h = 20.0 * (double)json_integer_value(v) / (double)peak;
        cep_buf_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2563eb\"/>",
                       w * (double)k, 21 - h, w > 1.5 ? w - 0.5 : w, h);
    }
    cep_buf_puts(o, "</svg>");
}

static void rules_table(cep_buf_t *o, const json_t *rep)
{
    const json_t *rules = json_object_get(rep, "rules"), *r;
    bool labeled = json_object_get(rep, "scenarios") != NULL;
    cep_buf_puts(o, "<section id=\"rules\"><h2>Rules</h2><table><thead><tr><th>rule</th><th></th>"
                    "<th class=\"num\">alerts</th><th class=\"num\">retracted</th>");
    if (labeled) cep_buf_puts(o, "<th class=\"num\">true alerts</th><th class=\"num\">precision</th>"
                                 "<th class=\"num\">recall</th>");
    cep_buf_puts(o, "<th>over time</th></tr></thead><tbody>");
    size_t i;
    json_array_foreach(rules, i, r) {
        cep_buf_puts(o, "<tr data-rule=\"");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "\"><td><code>");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "</code></td><td>");
        badge_severity(o, r);
        cep_buf_puts(o, "</td>");
        num_cell(o, "alerts", ival(r, "alerts"));
        num_cell(o, "retractions", ival(r, "retractions"));
        if (labeled) {
            num_cell(o, "true_alerts", ival(r, "true_alerts"));
            ratio_cell(o, "precision", json_object_get(r, "precision"), "#2563eb");
            ratio_cell(o, "recall", json_object_get(r, "recall"), "#16a34a");
        }
        cep_buf_puts(o, "<td>");
        sparkline(o, r);
        cep_buf_puts(o, "</td></tr>");
    }
    cep_buf_puts(o, "</tbody></table></section>\n");
}

static void delay_text(cep_buf_t *o, const json_t *d)
{
    if (!d || json_is_null(d)) {
        cep_buf_puts(o, "&ndash;");
        return;
    }
    long long ms = ival(d, "median");
    if (ms < 60000) cep_buf_printf(o, "%.1f s", (double)ms / 1000);
    else if (ms < 3600000) cep_buf_printf(o, "%.1f min", (double)ms / 60000);
    else cep_buf_printf(o, "%.1f h", (double)ms / 3600000);
}

static void scenarios_table(cep_buf_t *o, const json_t *rep)
{
    const json_t *scen = json_object_get(rep, "scenarios"), *rules = json_object_get(rep, "rules");
    if (!scen) return;
    cep_buf_puts(o, "<section id=\"scenarios\"><h2>Fraud scenarios in the labels</h2><table><thead><tr>"
                    "<th>scenario</th><th class=\"num\">instances</th><th class=\"num\">caught</th>"
                    "<th class=\"num\">recall</th><th class=\"num\">value</th><th class=\"num\">value caught</th>"
                    "<th>caught by</th></tr></thead><tbody>");
    const char *k;
    json_t *s;
    json_object_foreach((json_t *)scen, k, s) {
        cep_buf_puts(o, "<tr data-scenario=\"");
        esc(o, k);
        cep_buf_puts(o, "\"><td>");
        esc(o, k);
        cep_buf_puts(o, "</td>");
        num_cell(o, "instances", ival(s, "instances"));
        num_cell(o, "caught", ival(s, "caught"));
        ratio_cell(o, "recall", json_object_get(s, "recall"), "#16a34a");
        num_cell(o, "value_minor", ival(s, "value_minor"));
        num_cell(o, "caught_value_minor", ival(s, "caught_value_minor"));
        cep_buf_puts(o, "<td>");
        size_t i;
        const json_t *r;
        bool any = false;
        json_array_foreach(rules, i, r) {
            const json_t *rs = json_object_get(json_object_get(r, "scenarios"), k);
            if (!rs || ival(rs, "caught") <= 0) continue;
            cep_buf_puts(o, any ? "<br>" : "");
            any = true;
            cep_buf_puts(o, "<code>");
            esc(o, json_string_value(json_object_get(r, "rule")));
            cep_buf_printf(o, "</code> <span class=\"muted\">%lld, median delay ", ival(rs, "caught"));
            delay_text(o, json_object_get(rs, "detection_delay_ms"));
            cep_buf_puts(o, "</span>");
        }
        if (!any) cep_buf_puts(o, "<span class=\"muted\">nothing</span>");
        cep_buf_puts(o, "</td></tr>");
    }
    cep_buf_puts(o, "</tbody></table><p class=\"muted\">Values in minor units (<code>amount_minor</code>). An "
                    "instance is caught when an alert covers one of its labeled events; the delay runs from its "
                    "first labeled event to the first such alert, in event time.</p></section>\n");
}

/* The pack diff: per rule, removed alerts to the left, added to the right. */
static void diff(cep_buf_t *o, const json_t *rep)
{
    const json_t *base = json_object_get(rep, "baseline"), *rows, *r;
    if (!base || json_is_null(base)) return;
    rows = json_object_get(base, "rules");
    cep_buf_puts(o, "<section id=\"diff\"><h2>What changes against <code>");
    esc(o, json_string_value(json_object_get(base, "pack")));
    cep_buf_printf(o, "</code></h2><p data-k=\"diff_totals\" data-added=\"%lld\" data-removed=\"%lld\" "
                      "data-unchanged=\"%lld\"><b class=\"ch-added\">+",
                   ival(base, "added"), ival(base, "removed"), ival(base, "unchanged"));
    grouped(o, ival(base, "added"));
    cep_buf_puts(o, " alerts</b> &nbsp; <b class=\"ch-removed\">&minus;");
    grouped(o, ival(base, "removed"));
    cep_buf_puts(o, " alerts</b> &nbsp; <span class=\"muted\">");
    grouped(o, ival(base, "unchanged"));
    cep_buf_puts(o, " unchanged; ");
    grouped(o, ival(base, "baseline_alerts"));
    cep_buf_puts(o, " alerts before, ");
    grouped(o, ival(base, "alerts"));
    cep_buf_puts(o, " after</span></p>");
    long long peak = 1;
    size_t i, n = 0;
    json_array_foreach(rows, i, r) {
        if (ival(r, "added") > peak) peak = ival(r, "added");
        if (ival(r, "removed") > peak) peak = ival(r, "removed");
        n += ival(r, "added") || ival(r, "removed");
    }
    if (n) {
        /* labels end at L - 10; each side keeps 44 px for its count */
        const double W = 1000, row = 22, L = 250, R = 8, half = (W - R - L) / 2.0 - 44, mid = L + 44 + half;
        cep_buf_printf(o, "<svg id=\"diff-chart\" viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=\"img\" "
                          "aria-label=\"alerts removed and added per rule\">",
                       W, row * (double)n + 8);
        cep_buf_printf(o, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"0\" y2=\"%.0f\" stroke=\"#cbd5e1\"/>", mid, mid,
                       row * (double)n + 8);
        double y = 4;
        json_array_foreach(rows, i, r) {
            long long a = ival(r, "added"), d = ival(r, "removed");
            if (!a && !d) continue;
            cep_buf_printf(o, "<g data-rule=\"");
            esc(o, json_string_value(json_object_get(r, "rule")));
            cep_buf_printf(o, "\"><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" style=\"fill:#111827\">", L - 10,
                           y + 13);
            esc(o, json_string_value(json_object_get(r, "rule")));
            cep_buf_puts(o, "</text>");
            double wd = half * (double)d / (double)peak, wa = half * (double)a / (double)peak;
            if (d)
                cep_buf_printf(o, "<rect class=\"removed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" "
                                  "fill=\"#dc2626\" data-v=\"%lld\"><title>%lld removed</title></rect>"
                                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">&minus;%lld</text>",
                               mid - wd, y + 2, wd, d, d, mid - wd - 4, y + 13, d);
            if (a)
                cep_buf_printf(o, "<rect class=\"added\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\" "
                                  "fill=\"#16a34a\" data-v=\"%lld\"><title>%lld added</title></rect>"
                                  "<text x=\"%.1f\" y=\"%.1f\">+%lld</text>",
                               mid, y + 2, wa, a, a, mid + wa + 4, y + 13, a);
            cep_buf_puts(o, "</g>");
            y += row;
        }
        cep_buf_puts(o, "</svg>");
    }
    cep_buf_puts(o, "<table><thead><tr><th>rule</th><th>change</th><th class=\"num\">alerts before</th>"
                    "<th class=\"num\">after</th><th class=\"num\">added</th><th class=\"num\">removed</th>"
                    "<th class=\"num\">unchanged</th></tr></thead><tbody>");
    json_array_foreach(rows, i, r) {
        const char *ch = json_string_value(json_object_get(r, "change"));
        cep_buf_puts(o, "<tr data-rule=\"");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "\"><td><code>");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "</code></td><td class=\"ch-");
        esc(o, ch);
        cep_buf_puts(o, "\" data-k=\"change\">");
        esc(o, ch);
        cep_buf_puts(o, "</td>");
        num_cell(o, "baseline_alerts", ival(r, "baseline_alerts"));
        num_cell(o, "alerts", ival(r, "alerts"));
        num_cell(o, "added", ival(r, "added"));
        num_cell(o, "removed", ival(r, "removed"));
        num_cell(o, "unchanged", ival(r, "unchanged"));
        cep_buf_puts(o, "</tr>");
    }
    cep_buf_puts(o, "</tbody></table><p class=\"muted\">An alert is unchanged when the baseline made the same "
                    "one: same rule, key, window (or time) and values.</p></section>\n");
}

static void pretty(cep_buf_t *o, const json_t *v)
{
    char *t = json_dumps(v, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    esc(o, t);
    free(t);
}

static void details(cep_buf_t *o, const json_t *rep)
{
    const json_t *rules = json_object_get(rep, "rules"), *r;
    cep_buf_puts(o, "<section id=\"details\"><h2>Rule details</h2>");
    size_t i;
    json_array_foreach(rules, i, r) {
        if (ival(r, "alerts") <= 0) continue;
        cep_buf_puts(o, "<details><summary><code>");
        esc(o, json_string_value(json_object_get(r, "rule")));
        cep_buf_puts(o, "</code> &middot; ");
        grouped(o, ival(r, "alerts"));
        cep_buf_puts(o, " alerts</summary><h3>Top keys</h3><table><tbody>");
        size_t k;
        const json_t *kv;
        json_array_foreach(json_object_get(r, "top_keys"), k, kv) {
            cep_buf_puts(o, "<tr><td><code>");
            char *key = json_dumps(json_array_get(kv, 0), JSON_ENCODE_ANY | JSON_COMPACT);
            esc(o, key);
            free(key);
            cep_buf_puts(o, "</code></td>");
            num_cell(o, "key_alerts", (long long)json_integer_value(json_array_get(kv, 1)));
            cep_buf_puts(o, "</tr>");
        }
        cep_buf_puts(o, "</tbody></table><h3>Sample alerts, each with the event that made it</h3>");
        json_array_foreach(json_object_get(r, "samples"), k, kv) {
            cep_buf_puts(o, "<pre>");
            pretty(o, json_object_get(kv, "alert"));
            if (json_object_get(kv, "event")) {
                cep_buf_puts(o, "\n\n&larr; ");
                pretty(o, json_object_get(kv, "event"));
            }
            cep_buf_puts(o, "</pre>");
        }
        cep_buf_puts(o, "</details>");
    }
    cep_buf_puts(o, "</section>\n");
}

cep_status_t cep_backtest_html(const char *report_json, cep_buf_t *o, cep_error_t *err)
{
    json_error_t je;
    json_t *rep = json_loads(report_json, 0, &je);
    if (!rep) return cep_error_set(err, CEP_ERR_DECODE, NULL, "the report: %s (line %d)", je.text, je.line);
    const char *pack = json_string_value(json_object_get(rep, "pack"));
    const json_t *et = json_object_get(rep, "event_time");
    cep_buf_puts(o, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>cep backtest");
    if (pack) {
        cep_buf_puts(o, " &middot; ");
        esc(o, pack);
    }
    cep_buf_printf(o, "</title><style>%s</style></head><body>\n<header><div><h1>Backtest of <code>", style);
    esc(o, pack ? pack : "the pack");
    cep_buf_puts(o, "</code></h1><p>");
    if (et && !json_is_null(et)) {
        cep_buf_puts(o, "event time ");
        utc(o, ival(et, "from"), "%Y-%m-%d %H:%M");
        cep_buf_puts(o, " &rarr; ");
        utc(o, ival(et, "to"), "%Y-%m-%d %H:%M UTC");
        cep_buf_puts(o, " &middot; ");
    }
    const char *src = json_string_value(json_object_get(rep, "source"));
    if (src) {
        esc(o, src);
        cep_buf_puts(o, " &middot; ");
    }
    cep_buf_printf(o, "replayed in %.2f s (", json_number_value(json_object_get(rep, "wall_s")));
    grouped(o, (long long)json_number_value(json_object_get(rep, "events_per_s")));
    cep_buf_puts(o, " events/s)</p></div></header>\n<main>\n");
    cards(o, rep);
    timeline(o, rep);
    quality(o, rep);
    rules_table(o, rep);
    scenarios_table(o, rep);
    diff(o, rep);
    details(o, rep);
    cep_buf_puts(o, "</main><footer>cep backtest &middot; the same figures as the JSON report (schema "
                    "<code>cep.backtest/1</code>, docs/BACKTEST.md) &middot; this page fetches nothing"
                    "</footer></body></html>\n");
    json_decref(rep);
    return CEP_OK;
}
