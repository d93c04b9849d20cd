#include "operators/clinical/clinical_ingest.hpp"

#include <array>

#include "metrics/registry.hpp"
#include "operators/clinical/fhir_parser.hpp"
#include "operators/clinical/hl7_parser.hpp"
#include "operators/clinical/normalize.hpp"
#include "operators/clinical/pseudonymize.hpp"

namespace vigil::clinical {
namespace {

/// Dead letters carry at most this much of the message.
constexpr size_t max_raw_bytes = 64 * 1024;

enum class format { hl7, fhir };

struct ingest_settings {
  format fmt = format::hl7;
  int field_index = 0;
  std::string key_file;
  std::string key_env;
  schema_ptr out_schema;
  schema_ptr dead_schema;
};

schema_ptr observation_schema() {
  return make_schema({{"patient", type_id::string, false},
                      {"encounter", type_id::string, true},
                      {"code", type_id::string, false},
                      {"value", type_id::float64, false},
                      {"unit", type_id::string, false},
                      {"status", type_id::string, false},
                      {"event_time", type_id::timestamp, false},
                      {"message_id", type_id::string, false},
                      {"ingest_time", type_id::timestamp, false}});
}

schema_ptr dead_letter_schema() {
  return make_schema({{"reason", type_id::string, false},
                      {"detail", type_id::string, false},
                      {"raw", type_id::string, false},
                      {"ingest_time", type_id::timestamp, false}});
}

/// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void truncate_utf8(std::string& s, size_t max) {
  if (s.size() <= max) return;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  s.resize(n);
}

class ingest_operator final : public operator_base, private observation_sink {
 public:
  explicit ingest_operator(std::shared_ptr<const ingest_settings> s) : s_(std::move(s)) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    result<std::string> key = s_->key_file.empty()
                                  ? read_key_env(s_->key_env, "pseudonym_key_env")
                                  : read_key_file(s_->key_file, "pseudonym_key_file");
    if (!key) return key.err();
    auto p = pseudonymizer::make(*key,
                                 s_->key_file.empty() ? "pseudonym_key_env" : "pseudonym_key_file");
    // The key is only needed by OpenSSL from here on.
    std::fill(key->begin(), key->end(), '\0');
    if (!p) return p.err();
    pseudonymizer_ = std::move(*p);
    out_ = batch_builder(s_->out_schema, ctx.batch_size);
    dead_ = batch_builder(s_->dead_schema, ctx.batch_size);
    return {};
  }

  void process(size_t, const record_batch& batch, output& out) override {
    out_port_ = &out;
    now_ = operator_context::now_us();
    const column& in = batch.columns[static_cast<size_t>(s_->field_index)];
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      input_time_ = batch.event_time[r];
      if (in.is_null(r)) {
        raw_ = {};
        dead_letter(ingest_errc::missing_input, "the input field is null", {});
        continue;
      }
      raw_ = in.string_at(r);
      std::optional<ingest_errc> e;
      std::string_view mrn;
      if (s_->fmt == format::hl7) {
        e = hl7_.parse(raw_, *this, detail_);
        mrn = hl7_.last_header().patient;
      } else {
        e = fhir_.parse(raw_, *this, detail_);
      }
      if (e) dead_letter(*e, detail_, mrn);
    }
    flush(out);
  }

  status close(output& out) override {
    flush(out);
    return {};
  }

 private:
  void flush(output& out) {
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!dead_.empty()) out.emit(1, dead_.finish());
  }

  void observation(const observation_ref& parsed) override {
    observation_ref obs = parsed;
    if (auto e = normalize(obs, what_)) {
      describe(obs.index, obs.message_id, what_);
      return dead_letter(*e, detail_, obs.patient);
    }
    pseudonymize(obs.patient);
    out_.col(0).push_string(pseudonym_);
    if (obs.encounter.empty()) {
      out_.col(1).push_null();
    } else {
      redacted(obs.encounter, obs.patient);
      out_.col(1).push_string(text_);
    }
    out_.col(2).push_string(obs.code);
    out_.col(3).push_float64(obs.value);
    out_.col(4).push_string(obs.unit);
    out_.col(5).push_string(obs.status);
    out_.col(6).push_int64(obs.event_time);
    redacted(obs.message_id, obs.patient);
    out_.col(7).push_string(text_);
    out_.col(8).push_int64(now_);
    out_.end_row(obs.event_time);
    if (out_.size() >= ctx_->batch_size) out_port_->emit(0, out_.finish());
  }

  void refused(int, std::string_view patient, ingest_errc code, std::string_view detail) override {
    dead_letter(code, detail, patient);
  }

  /// "observation #i (id): what" into detail_.
  void describe(int index, std::string_view id, std::string_view what) {
    detail_.assign(s_->fmt == format::hl7 ? "OBX #" : "observation #");
    detail_.append(std::to_string(index));
    if (s_->fmt == format::fhir) {
      detail_.append(" (");
      detail_.append(id.substr(0, 128));
      detail_.append(")");
    }
    detail_.append(": ");
    detail_.append(what);
  }

  void pseudonymize(std::string_view mrn) {
    if (mrn != last_mrn_ || pseudonym_.empty()) {
      pseudonymizer_->pseudonym(mrn, pseudonym_);
      last_mrn_.assign(mrn);
    }
  }

  /// `text` with the MRN replaced by the pseudonym, into text_.
  void redacted(std::string_view text, std::string_view mrn) {
    text_.assign(text);
    if (!mrn.empty()) {
      pseudonymize(mrn);
      redact(text_, mrn, pseudonym_);
    }
  }

  void dead_letter(ingest_errc code, std::string_view detail, std::string_view mrn) {
    // Bounds-checked in release builds too: a code added after ingest_errc_count's last one
    // loses its metric, never memory.
    if (const auto i = static_cast<size_t>(code); i < ingest_errc_count) {
      auto& counter = dead_letters_[i];
      if (!counter) {  // Once per reason: the series is kept while the subtask runs.
        counter =
            metrics::series(metrics::family().clinical_dead_letters,
                            {{"job", ctx_->job_name}, {"reason", std::string(to_string(code))}});
      }
      counter->Increment();
    }
    dead_.col(0).push_string(to_string(code));
    if (mrn.empty()) {
      dead_.col(1).push_string(detail);
    } else {
      redacted(detail, mrn);
      dead_.col(1).push_string(text_);
    }
    text_.assign(raw_.substr(0, max_raw_bytes + 4));
    if (!mrn.empty()) {
      pseudonymize(mrn);
      redact(text_, mrn, pseudonym_);
    }
    truncate_utf8(text_, max_raw_bytes);
    dead_.col(2).push_string(text_);
    dead_.col(3).push_int64(now_);
    dead_.end_row(input_time_);
    if (dead_.size() >= ctx_->batch_size) out_port_->emit(1, dead_.finish());
  }

  std::shared_ptr<const ingest_settings> s_;
  operator_context* ctx_ = nullptr;
  output* out_port_ = nullptr;
  std::unique_ptr<pseudonymizer> pseudonymizer_;
  hl7_parser hl7_;
  fhir_parser fhir_;
  batch_builder out_;
  batch_builder dead_;
  std::string_view raw_;
  int64_t now_ = 0;
  int64_t input_time_ = 0;
  std::string detail_;
  std::string what_;
  std::string text_;
  std::string last_mrn_;
  std::string pseudonym_;
  /// vigil_clinical_dead_letters_total{job, reason}, by ingest_errc, taken at first use.
  std::array<metrics::series<prometheus::Counter>, ingest_errc_count> dead_letters_;
};

class ingest_plan final : public operator_plan {
 public:
  explicit ingest_plan(std::shared_ptr<const ingest_settings> s) : s_(std::move(s)) {}
  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<ingest_operator>(s_);
  }

 private:
  std::shared_ptr<const ingest_settings> s_;
};

class ingest_factory final : public operator_factory {
 public:
  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    if (ctx.inputs.size() != 1 || !ctx.inputs[0].schema) {
      return make_error(errc::invalid_graph, "clinical_ingest takes exactly one input");
    }
    config_reader cfg(*ctx.config);
    auto s = std::make_shared<ingest_settings>();
    auto fmt = cfg.required_string("format");
    if (!fmt) return fmt.err();
    if (*fmt == "hl7") {
      s->fmt = format::hl7;
    } else if (*fmt == "fhir") {
      s->fmt = format::fhir;
    } else {
      return config_reader::key_error("format", "'" + *fmt + "' is not \"hl7\" or \"fhir\"");
    }
    auto field = cfg.string_or("field", "raw");
    if (!field) return field.err();
    const schema& in = *ctx.inputs[0].schema;
    s->field_index = in.index_of(*field);
    if (s->field_index < 0) {
      return config_reader::key_error(
          "field", "no field '" + *field + "' in the input (" + in.to_string() + ")");
    }
    if (in.at(static_cast<size_t>(s->field_index)).type != type_id::string) {
      return config_reader::key_error(
          "field", "field '" + *field + "' is " +
                       std::string(to_string(in.at(s->field_index).type)) + ", expected string");
    }
    auto file = cfg.string_or("pseudonym_key_file", "");
    if (!file) return file.err();
    auto env = cfg.string_or("pseudonym_key_env", "");
    if (!env) return env.err();
    if (file->empty() == env->empty()) {
      return config_reader::key_error(
          "pseudonym_key_file",
          file->empty()
              ? "a pseudonym key is required: set pseudonym_key_file (a file holding the key) "
                "or pseudonym_key_env (an environment variable holding it)"
              : "set pseudonym_key_file or pseudonym_key_env, not both");
    }
    s->key_file = *file;
    s->key_env = *env;
    VIGIL_TRY(cfg.finish());
    s->out_schema = observation_schema();
    s->dead_schema = dead_letter_schema();
    auto p = std::make_shared<ingest_plan>(s);
    p->outputs = {stream_info{s->out_schema, {}}, stream_info{s->dead_schema, {}}};
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_{
      .name = "clinical_ingest",
      .input_ports = {"in"},
      .output_ports = {"out", "dead"},
      .summary =
          "Parses HL7 v2 ORU^R01 / FHIR R4 Observations into normalized, pseudonymized "
          "observations; refused input goes to \"dead\" with its reason.",
  };
};

}  // namespace

void register_clinical_ingest_operator(operator_registry& r) {
  r.add(std::make_unique<ingest_factory>());
}

}  // namespace vigil::clinical
