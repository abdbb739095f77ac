/*
 * main.c — the cep binary: one program, many subcommands.
 */
#ifdef CEP_HAVE_GEN
#include "bench/gen.h"
#endif
#include "engine/cli.h"

#include <stdio.h>
#include <string.h>

/* jemalloc's options when it is linked in (MALLOC_CONF in the environment
 * still wins). State is hundreds of thousands of small entries read in
 * random order: on 4 KiB pages nearly every lookup misses the TLB as well
 * as the cache, and transparent huge pages for the heap cut a backtest's
 * time by a fifth (bench/RESULTS.md). The kernel's default THP mode,
 * madvise, lets jemalloc ask for them. */
const char *malloc_conf = "thp:always";

static const char usage[] =
    "usage: cep <command> [options]\n"
    "\n"
    "commands:\n"
    "  check PACK...                 compile rule packs, print errors, exit 1 on any\n"
    "  run --rules PACK --input FILE|- [--output FILE|-] [--dead-letters FILE]\n"
    "                                run a pack over JSON-lines events\n"
    "  conform [--expected-failures FILE] [--extensions DIR] PATH...\n"
    "                                run conformance cases (files or folders)\n"
    "  run --rules PACK --kafka BOOTSTRAP|embedded [--group G] [-X key=value] [--idle-exit-ms MS]\n"
    "                                run a pack on Kafka: source topics in, alerts and dead letters out\n"
    "  broker [--port P] [--partitions N]\n"
    "                                an embedded Kafka broker on loopback (prints its bootstrap)\n"
    "  consume --kafka BOOTSTRAP --topic T [--max N] [--idle-exit-ms MS]\n"
    "                                print a topic's records (alerts with their rule and severity)\n"
    "  backtest --rules PACK (--input FILE... | --kafka BOOTSTRAP [--topic T] [--from TIME] [--to TIME])\n"
    "           [--labels FILE] [--baseline PACK] [--report FILE.html] [--json FILE] [--alerts FILE]\n"
    "                                replay history through a pack: what it would have caught\n"
    "  explain RULE --rules PACK [--dot]\n"
    "                                the plan of a rule; --dot: its pattern's NFA as Graphviz\n"
    "  gen --domain gaming|payments --events N --seed S --output FILE [--labels FILE]\n"
    "                                generate labeled synthetic events\n";

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "check")) return cep_cli_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cep_cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "conform")) return cep_cli_conform(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain")) return cep_cli_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "broker")) return cep_cli_broker(argc - 1, argv + 1);
    if (!strcmp(cmd, "consume")) return cep_cli_consume(argc - 1, argv + 1);
    if (!strcmp(cmd, "backtest")) return cep_cli_backtest(argc - 1, argv + 1);
#ifdef CEP_HAVE_GEN
    if (!strcmp(cmd, "gen")) return cep_gen_main(argc - 1, argv + 1);
#endif
    fprintf(stderr, "cep: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
