// `lowbit explore [MODEL] --space SPACE.json [--store FILE]`: evaluates and costs every point of a
// design space into a resumable SQLite store; prints the Pareto-optimal points at the end.
// Under `mpirun -n N` the points are shared among the ranks; rank 0 writes the store.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "lowbit/dse/explore.hpp"
#include "lowbit/report/report.hpp"
#include "lowbit/report/report_data.hpp"
#include "lowbit/util/utc_time.hpp"
#include "src/cli/commands.hpp"

namespace lowbit::cli {
namespace {

struct ExploreCommandOptions {
  dse::ExploreOptions explore;
  std::string space, store = "explore.db";
};

// The Pareto fronts of this model's points, as `lowbit report` prints them.
void print_fronts(const dse::ResultStore& store, const std::string& model) {
  std::vector<dse::PointResult> points;
  for (dse::PointResult& p : store.points())
    if (p.model == model) points.push_back(std::move(p));
  if (points.empty()) return;
  std::fputs(report::format_fronts(report::make_report_data(std::move(points), store.path(), utc_now_iso8601())).c_str(), stdout);
}

void run(const ExploreCommandOptions& o) {
  std::unique_ptr<dse::Ranks> ranks = dse::make_ranks(nullptr, nullptr);
  try {
    // The space, the model and its data are checked on every rank before any work starts.
    dse::ExploreSpace space = dse::ExploreSpace::from_file(o.space);
    if (ranks->rank() == 0)
      fmt::print("{}: {} points ({} rank{} x {} thread{})\n", o.space, space.points.size(), ranks->size(), ranks->size() == 1 ? "" : "s",
                 o.explore.threads, o.explore.threads == 1 ? "" : "s");
    std::fflush(stdout);
    dse::ExploreSummary s = dse::explore(space, o.explore, o.store, *ranks, [](const std::string& line) {
      fmt::print("  {}\n", line);
      std::fflush(stdout);
    });
    if (ranks->rank() != 0) return;
    fmt::print("{} points: {} already in {}, {} evaluated in {:.1f} s ({:.1f} points per minute)\n", s.points, s.stored_before, o.store,
               s.evaluated, s.seconds, s.points_per_minute());
    dse::ResultStore store = dse::ResultStore::open_read_only(o.store);
    print_fronts(store, store.meta("model").value_or(""));
  } catch (const std::exception& e) {
    if (ranks->size() > 1) {
      fmt::print(stderr, "lowbit: rank {}: {}\n", ranks->rank(), e.what());
      std::fflush(stderr);
      ranks->abort(1);
    }
    throw;
  }
}

}  // namespace

void add_explore_command(CLI::App& app) {
  auto o = std::make_shared<ExploreCommandOptions>();
  CLI::App* c = app.add_subcommand("explore", "evaluate and cost every point of a design space into a resumable results store");
  c->add_option("model", o->explore.model, "ONNX model (default: the space's \"model\")");
  c->add_option("--space", o->space, "space file (JSON)")->required();
  c->add_option("--store", o->store, "SQLite results store; points already in it are not evaluated again")->capture_default_str();
  c->add_option("--data", o->explore.data, "evaluation images (default: the model card's)");
  c->add_option("--calib", o->explore.calib, "calibration images (default: the model card's)");
  c->add_option("--threads", o->explore.threads, "threads per process")->check(CLI::Range(1, 256));
  c->callback([o] { run(*o); });
}

}  // namespace lowbit::cli
