#include "lowbit/dse/explore.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "lowbit/graph/onnx_io.hpp"
#include "lowbit/hw/cost_model.hpp"
#include "lowbit/ptq/quantize_graph.hpp"
#include "lowbit/runtime/session.hpp"
#include "lowbit/runtime/shape_inference.hpp"
#include "lowbit/util/progress.hpp"
#include "lowbit/util/utc_time.hpp"

namespace lowbit::dse {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string format_text(const std::optional<QuantizerConfig>& c) { return c ? c->format.to_string() : "float"; }

// The hardware cost of a point: each layer at the formats it was quantized with (the layer report's,
// which reflect per-tensor choices such as unsigned_if_nonnegative; the recipe's for a layer without
// a report). NaN figures when a layer's formats have no MAC model (float, block-scaled, BitMoD).
void add_cost(PointResult& r, const Graph& shaped, const QuantRecipe& recipe, const std::vector<LayerQuantReport>& reports,
              const ExploreSpace& space) {
  std::map<std::string, const LayerQuantReport*> by_node;
  for (const LayerQuantReport& rep : reports) by_node[rep.node] = &rep;
  std::vector<const Node*> layers = quantizable_layers(shaped);
  std::map<const Node*, hw::LayerFormats> formats;
  for (size_t i = 0; i < layers.size(); ++i) {
    bool first = i == 0, last = i + 1 == layers.size();
    auto it = by_node.find(layers[i]->name);
    formats[layers[i]] = it != by_node.end()
                             ? hw::LayerFormats{it->second->weight_format, it->second->activation_format}
                             : hw::LayerFormats{format_text(recipe.config_for(*layers[i], TensorRole::Weight, first, last, 0)),
                                                format_text(recipe.config_for(*layers[i], TensorRole::Activation, first, last, 1))};
  }
  hw::ModelCostOptions o;
  o.parallelism = space.parallelism;
  o.use_dsp = space.use_dsp;
  o.layer_formats = [&](const Node& n) -> std::optional<hw::LayerFormats> {
    auto it = formats.find(&n);
    if (it == formats.end()) return std::nullopt;
    return it->second;
  };
  try {
    hw::ModelCost c = hw::model_cost(shaped, o, hw::CostModel::builtin());
    r.macs = static_cast<double>(c.macs);
    r.bit_ops = c.bit_ops;
    r.weight_bits = c.weight_bits;
    r.activation_bits = c.activation_bits_peak;
    r.lut = c.total.lut;
    r.ff = c.total.ff;
    r.carry = c.total.carry;
    r.dsp = c.total.dsp;
  } catch (const std::invalid_argument&) {
    // A format without a MAC model: the point has an accuracy but no cost.
  }
}

}  // namespace

PointEvaluator::PointEvaluator(const ExploreSpace& space, const ExploreOptions& o) : space_(space), options_(o) {
  model_path_ = !o.model.empty() ? o.model : space.model;
  if (model_path_.empty()) throw std::runtime_error("no model: give MODEL or name one in the space's \"model\"");
  graph_ = load_onnx(model_path_);
  std::optional<ModelCard> card = find_model_card(model_path_);
  if (!card) throw std::runtime_error(fmt::format("{}: no model card (write {}.card.json) to say how to preprocess", model_path_, model_path_));
  card_ = *card;
  data_dir_ = !o.data.empty() ? o.data : card_.eval_data;
  if (data_dir_.empty()) throw std::runtime_error(fmt::format("{}: no model card names its data; give --data DIR", model_path_));
  eval_ = auto_detect(data_dir_);
  eval_pre_ = card_.preprocess_for(data_dir_);
  if (!o.calib.empty()) {
    calib_ = auto_detect(o.calib);
    calib_pre_ = card_.preprocess_for(o.calib);
  } else {
    calib_ = calibration_set(card_);
    calib_pre_ = card_.preprocess_for(card_.calibration_data);
  }
  eval_ = without(eval_, calib_);
  if (space.evaluation_images && space.evaluation_images < eval_.size()) eval_ = spread_subset(eval_, space.evaluation_images);
  if (eval_.size() == 0) throw std::runtime_error(fmt::format("{}: no evaluation images left besides the calibration images", data_dir_));
  shaped_graph_ = graph_;
  infer_shapes(shaped_graph_);
}

const std::vector<Tensor>& PointEvaluator::calibration_batches(size_t images) {
  auto it = calib_batches_.find(images);
  if (it != calib_batches_.end()) return it->second;
  std::vector<Tensor> batches;
  for (PreparedBatch& b : prepare_batches(spread_subset(calib_, images), calib_pre_, space_.batch, options_.threads))
    batches.push_back(std::move(b.input));
  return calib_batches_[images] = std::move(batches);
}

PointResult PointEvaluator::evaluate(const ExplorePoint& p) {
  if (eval_batches_.empty()) eval_batches_ = prepare_batches(eval_, eval_pre_, space_.batch, options_.threads);
  QuantRecipe recipe = QuantRecipe::from_json(p.recipe);
  PointResult r;
  r.key = key(p);
  r.model = model_path_;
  r.weight_format = p.weight_format;
  r.activation_format = p.activation_format;
  r.granularity = p.granularity;
  r.technique = p.technique;
  r.recipe = p.recipe;
  r.lowbit_version = LOWBIT_VERSION;
  r.host = host_name();

  auto t0 = std::chrono::steady_clock::now();
  size_t calib_images = std::min(recipe.calibration_images().value_or(calib_.size()), calib_.size());
  QuantizeGraphResult q = quantize_graph(graph_, recipe, prepared_feed(calibration_batches(calib_images)), options_.threads);
  r.quantize_seconds = seconds_since(t0);

  add_cost(r, shaped_graph_, recipe, q.layers, space_);
  t0 = std::chrono::steady_clock::now();
  Session s(std::move(q.graph), SessionOptions{options_.threads, true});
  ClassifyOptions co;
  co.batch = space_.batch;
  co.threads = options_.threads;
  co.progress = false;
  ClassifyResult c = evaluate_classifier(s, eval_batches_, co);
  r.eval_seconds = seconds_since(t0);
  r.top1 = c.top1();
  r.top5 = c.top5();
  r.images = static_cast<int64_t>(c.images);
  r.finished_at = utc_now_iso8601();
  return r;
}

ExploreSummary explore(const ExploreSpace& space, const ExploreOptions& o, const std::string& store_path, Ranks& ranks,
                       const std::function<void(const std::string&)>& log) {
  PointEvaluator evaluator(space, o);
  ExploreSummary summary;
  summary.points = space.points.size();
  std::optional<ResultStore> store;
  std::vector<int> pending;
  if (ranks.rank() == 0) {
    store.emplace(ResultStore::open(store_path));
    store->set_meta("space", space.source.dump());
    store->set_meta("model", evaluator.model_path());
    for (size_t i = 0; i < space.points.size(); ++i)
      if (!store->contains(evaluator.key(space.points[i]))) pending.push_back(static_cast<int>(i));
  }
  pending = ranks.broadcast(std::move(pending));
  summary.stored_before = summary.points - pending.size();

  std::vector<int> mine;
  for (size_t k = 0; k < pending.size(); ++k)
    if (static_cast<int>(k % static_cast<size_t>(ranks.size())) == ranks.rank()) mine.push_back(pending[k]);
  const size_t from_others = pending.size() - mine.size();

  Progress bar("explore", ranks.rank() == 0 && o.progress ? pending.size() : 0, "points");
  auto describe = [](const PointResult& r) {
    return fmt::format("{:<10} {:<10} {:<9} {:<10} top-1 {:6.2f}  LUT {:>10}  rank {}", r.weight_format, r.activation_format, r.granularity,
                       r.technique, r.top1, std::isnan(r.lut) ? std::string("-") : fmt::format("{:.0f}", r.lut), r.rank);
  };
  auto store_result = [&](const PointResult& r) {
    store->insert(r);
    ++summary.evaluated;
    bar.advance(1);
    if (log) log(describe(r));
  };
  size_t received = 0;
  auto drain = [&](bool wait) {
    while (received < from_others) {
      std::optional<PointResult> r = ranks.receive_result(wait);
      if (!r) return;
      ++received;
      store_result(*r);
    }
  };

  auto t0 = std::chrono::steady_clock::now();
  for (int index : mine) {
    PointResult r = evaluator.evaluate(space.points[static_cast<size_t>(index)]);
    r.rank = ranks.rank();
    if (ranks.rank() == 0) {
      store_result(r);
      drain(false);
    } else {
      ranks.send_result(r);
    }
  }
  if (ranks.rank() == 0) drain(true);
  bar.finish();
  summary.seconds = seconds_since(t0);
  if (ranks.rank() != 0) summary.evaluated = mine.size();
  return summary;
}

}  // namespace lowbit::dse
