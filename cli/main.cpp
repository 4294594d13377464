// cake-bench: time to first token when the KV cache is computed, loaded, or both at once.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/error_exit.hpp"
#include "cli/exit_codes.hpp"
#include "common/error.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace cake;
  CLI::App app{
      "cake-bench: measures time to first token (TTFT) of long-context prefill when the KV cache is\n"
      "computed on the GPU, loaded from storage or network, or both at once (Cake).\n"};
  app.name("cake-bench");
  app.set_version_flag("--version", std::string("cake-bench ") + kVersion + " (commit " + kCommit + ")");
  app.require_subcommand(1);
  app.footer("Run 'cake-bench COMMAND --help' for a command's options. Exit codes: 0 ok, 1 failure or regression,\n"
             "2 bad usage or input, 3 environment (no GPU/space/io_uring), 4 verification failed.");

  int exit_code = kExitOk;
  add_info_command(app, exit_code);
  add_calibrate_command(app, exit_code);
  add_run_command(app, exit_code, argc, argv);
  add_prepare_command(app, exit_code);
  add_serve_command(app, exit_code);
  add_report_command(app, exit_code);
  add_compare_command(app, exit_code);
  add_logits_command(app, exit_code);

  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known |= sub->check_name(argv[1]);
    if (!known) {
      std::fprintf(stderr, "cake-bench: unknown command '%s'\nhint: run 'cake-bench --help' for the commands\n", argv[1]);
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (...) {
    const ErrorExit e = error_exit(std::current_exception());
    std::fputs(e.message.c_str(), stderr);
    return e.code;
  }
  return exit_code;
}
