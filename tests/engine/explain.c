/*
 * `cep explain`: the NFA of a pattern rule as Graphviz DOT, exactly.
 */
#include "engine/cli.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>

static void redirect(void)
{
    cr_redirect_stdout();
}

Test(explain, dot_of_an_absence_rule, .init = redirect)
{
    char *argv[] = {"explain", "bonus_without_play", "--rules", "rules/demo", "--dot", NULL};
    cr_assert_eq(cep_cli_explain(5, argv), 0);
    fflush(stdout);
    cr_assert_stdout_eq_str(
        "digraph \"BONUS_WITHOUT_PLAY\" {\n"
        "  rankdir=LR;\n"
        "  node [shape=circle, fontname=\"Helvetica\"];\n"
        "  label=\"BONUS_WITHOUT_PLAY: PATTERN (C) NOT FOLLOWED BY B WITHIN 1800000 ms\";\n"
        "  start [shape=point];\n"
        "  start -> s0;\n"
        "  s0 [label=\"0\"];\n"
        "  s0 -> s1 [label=\"C: ((EVENT_TYPE = 'bonus_claim') AND (BONUS_TYPE = 'welcome'))\"];\n"
        "  s1 [label=\"match\", shape=doublecircle];\n"
        "}\n");
}

Test(explain, a_rule_without_a_pattern_has_no_graph)
{
    char *argv[] = {"explain", "failed_login_burst", "--rules", "rules/demo", "--dot", NULL};
    cr_assert_eq(cep_cli_explain(5, argv), 1);
    char *missing[] = {"explain", "no_such_rule", "--rules", "rules/demo", NULL};
    cr_assert_eq(cep_cli_explain(4, missing), 1);
}

Test(explain, every_pattern_rule_of_the_demo_pack_draws, .init = redirect)
{
    char *a[] = {"explain", "account_takeover_chain", "--rules", "rules/demo", "--dot", NULL};
    char *b[] = {"explain", "bonus_without_play", "--rules", "rules/demo", "--dot", NULL};
    cr_assert_eq(cep_cli_explain(5, a), 0);
    cr_assert_eq(cep_cli_explain(5, b), 0);
}
