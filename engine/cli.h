/*
 * cli.h — the subcommands of the cep binary. Each takes argv with argv[0]
 * the subcommand name and returns a process exit code.
 */
#ifndef CEP_CLI_H
#define CEP_CLI_H

int cep_cli_check(int argc, char **argv);
int cep_cli_run(int argc, char **argv);
int cep_cli_conform(int argc, char **argv);
int cep_cli_explain(int argc, char **argv);
int cep_cli_broker(int argc, char **argv);
int cep_cli_consume(int argc, char **argv);
int cep_cli_backtest(int argc, char **argv);

#endif
