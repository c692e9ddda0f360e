#pragma once
// Running the external tools (verilator, yosys) without a shell.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::hw {

struct CommandResult {
  int exit_status = -1;  // -1 when the program could not start or died from a signal
  std::string output;    // stdout and stderr together
};

// Runs argv[0] (searched in PATH) in `working_dir` (empty: the current one).
CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& working_dir = {});

// Full path of a program in PATH, if there is one.
std::optional<std::filesystem::path> find_program(const std::string& name);

// A fresh directory under the system's temporary directory: "<tmp>/lowbit-<what>-XXXXXX".
std::filesystem::path make_temp_dir(const std::string& what);

std::string read_text_file(const std::filesystem::path& p);
void write_text_file(const std::filesystem::path& p, const std::string& text);

}  // namespace lowbit::hw
