// Each subcommand lives in its own cmd_*.cpp and registers itself on the app through one of
// these functions; main.cpp calls them in order. A command's callback returns its exit code
// through the int it is given.
#pragma once

#include <CLI/CLI.hpp>

namespace cake {

void add_info_command(CLI::App& app, int& exit_code);
void add_calibrate_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code, int argc, char** argv);
void add_prepare_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app, int& exit_code);
void add_compare_command(CLI::App& app, int& exit_code);
void add_logits_command(CLI::App& app, int& exit_code);

}  // namespace cake
