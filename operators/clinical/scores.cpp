#include "operators/clinical/scores.hpp"

#include <climits>
#include <cmath>
#include <span>

namespace vigil::clinical {
namespace {

using enum parameter;

/// An integer band of a chart: values up to `upper` (inclusive) score `points`. Tables are in
/// ascending order and end with INT_MAX.
struct band {
  int upper;
  int points;
};

int banded(std::span<const band> table, int v) {
  for (const band& b : table) {
    if (v <= b.upper) return b.points;
  }
  return table.back().points;
}

// NEWS2, RCP 2017, Chart 1: the NEWS scoring system.
constexpr band news2_resp_rate[] = {{8, 3}, {11, 1}, {20, 0}, {24, 2}, {INT_MAX, 3}};
constexpr band news2_spo2_scale1[] = {{91, 3}, {93, 2}, {95, 1}, {INT_MAX, 0}};
/// Scale 2 up to 92 %; above, the points depend on air or oxygen.
constexpr band news2_spo2_scale2[] = {{83, 3}, {85, 2}, {87, 1}, {92, 0}};
constexpr band news2_spo2_scale2_on_o2[] = {{94, 1}, {96, 2}, {INT_MAX, 3}};
constexpr band news2_sbp[] = {{90, 3}, {100, 2}, {110, 1}, {219, 0}, {INT_MAX, 3}};
constexpr band news2_pulse[] = {{40, 3}, {50, 1}, {90, 0}, {110, 1}, {130, 2}, {INT_MAX, 3}};
/// In tenths of °C.
constexpr band news2_temperature[] = {{350, 3}, {360, 1}, {380, 0}, {390, 1}, {INT_MAX, 2}};

/// A continuous threshold: values at or above `at_least` score `points`. Tables are in
/// descending order; values below the last entry score 0.
struct at_least {
  double limit;
  int points;
};

/// Values strictly below `limit` score `points`. Tables in ascending order.
struct below {
  double limit;
  int points;
};

int thresholded(std::span<const at_least> table, double v) {
  for (const at_least& t : table) {
    if (v >= t.limit) return t.points;
  }
  return 0;
}

int thresholded(std::span<const below> table, double v) {
  for (const below& t : table) {
    if (v < t.limit) return t.points;
  }
  return 0;
}

// SOFA, Vincent 1996 / Singer 2016 Table 1.
constexpr below sofa_pf_ratio[] = {{100, 4}, {200, 3}, {300, 2}, {400, 1}};
constexpr below sofa_platelets[] = {{20, 4}, {50, 3}, {100, 2}, {150, 1}};
constexpr at_least sofa_bilirubin[] = {{12.0, 4}, {6.0, 3}, {2.0, 2}, {1.2, 1}};
constexpr below sofa_gcs[] = {{6, 4}, {10, 3}, {13, 2}, {15, 1}};
constexpr at_least sofa_creatinine[] = {{5.0, 4}, {3.5, 3}, {2.0, 2}, {1.2, 1}};

int rounded(double v) {
  return static_cast<int>(std::lround(v));
}

/// Supplemental oxygen as stated or inferred, or nullopt when unknown.
std::optional<bool> on_oxygen(const score_inputs& in) {
  if (in.supplemental_o2) return in.supplemental_o2;
  const auto& fio2_v = in[fio2];
  const auto& flow = in[o2_flow];
  if ((fio2_v && *fio2_v > 0.21) || (flow && *flow > 0)) return true;
  if (fio2_v || flow) return false;
  return std::nullopt;
}

template <class Items, class Result>
void set(Result& r, Items item, int points) {
  r.points[static_cast<size_t>(item)] = points;
  r.total += points;
}

}  // namespace

std::string_view to_string(news2_band b) {
  switch (b) {
    case news2_band::low:
      return "low";
    case news2_band::low_medium:
      return "low_medium";
    case news2_band::medium:
      return "medium";
    case news2_band::high:
      return "high";
  }
  return "low";
}

std::string_view to_string(news2_item item) {
  static constexpr std::string_view names[] = {"resp_rate", "spo2",          "air_or_oxygen", "sbp",
                                               "pulse",     "consciousness", "temperature"};
  return names[static_cast<size_t>(item)];
}

std::string_view to_string(qsofa_item item) {
  static constexpr std::string_view names[] = {"resp_rate", "sbp", "mentation"};
  return names[static_cast<size_t>(item)];
}

std::string_view to_string(sirs_item item) {
  static constexpr std::string_view names[] = {"temperature", "heart_rate", "respiratory",
                                               "white_cells"};
  return names[static_cast<size_t>(item)];
}

std::string_view to_string(sofa_item item) {
  static constexpr std::string_view names[] = {"respiration",    "coagulation", "liver",
                                               "cardiovascular", "cns",         "renal"};
  return names[static_cast<size_t>(item)];
}

news2_result news2(const score_inputs& in) {
  news2_result r;
  r.spo2_scale = in.hypercapnic ? 2 : 1;
  const std::optional<bool> oxygen = on_oxygen(in);
  const auto item = [&](news2_item i, parameter p, auto&& points) {
    if (const auto& v = in[p]) {
      set(r, i, points(*v));
    } else {
      r.missing |= bit(p);
    }
  };
  item(news2_item::resp_rate, resp_rate,
       [](double v) { return banded(news2_resp_rate, rounded(v)); });
  item(news2_item::spo2, spo2, [&](double v) {
    const int s = rounded(v);
    if (!in.hypercapnic) return banded(news2_spo2_scale1, s);
    if (s <= 92) return banded(news2_spo2_scale2, s);
    return oxygen.value_or(false) ? banded(news2_spo2_scale2_on_o2, s) : 0;
  });
  if (oxygen) {
    set(r, news2_item::air_or_oxygen, *oxygen ? 2 : 0);
  } else {
    r.missing |= bit(fio2);
  }
  item(news2_item::sbp, sbp, [](double v) { return banded(news2_sbp, rounded(v)); });
  item(news2_item::pulse, heart_rate, [](double v) { return banded(news2_pulse, rounded(v)); });
  item(news2_item::consciousness, gcs, [](double v) { return rounded(v) < 15 ? 3 : 0; });
  item(news2_item::temperature, temperature,
       [](double v) { return banded(news2_temperature, rounded(v * 10)); });
  for (int p : r.points) r.red = r.red || p == 3;
  // RCP 2017, Chart 4: clinical risk from the aggregate score and red scores.
  if (r.total >= 7) {
    r.band = news2_band::high;
  } else if (r.total >= 5) {
    r.band = news2_band::medium;
  } else if (r.red) {
    r.band = news2_band::low_medium;
  } else {
    r.band = news2_band::low;
  }
  return r;
}

qsofa_result qsofa(const score_inputs& in) {
  qsofa_result r;
  if (const auto& v = in[resp_rate]) {
    set(r, qsofa_item::resp_rate, *v >= 22 ? 1 : 0);
  } else {
    r.missing |= bit(resp_rate);
  }
  if (const auto& v = in[sbp]) {
    set(r, qsofa_item::sbp, *v <= 100 ? 1 : 0);
  } else {
    r.missing |= bit(sbp);
  }
  if (const auto& v = in[gcs]) {
    set(r, qsofa_item::mentation, rounded(*v) < 15 ? 1 : 0);
  } else {
    r.missing |= bit(gcs);
  }
  return r;
}

sirs_result sirs(const score_inputs& in) {
  sirs_result r;
  for (parameter p : {temperature, heart_rate, resp_rate, paco2, wbc, bands}) {
    if (!in[p]) r.missing |= bit(p);
  }
  const auto& t = in[temperature];
  set(r, sirs_item::temperature, t && (*t > 38 || *t < 36) ? 1 : 0);
  const auto& hr = in[heart_rate];
  set(r, sirs_item::heart_rate, hr && *hr > 90 ? 1 : 0);
  const auto& rr = in[resp_rate];
  const auto& co2 = in[paco2];
  set(r, sirs_item::respiratory, (rr && *rr > 20) || (co2 && *co2 < 32) ? 1 : 0);
  const auto& w = in[wbc];
  const auto& b = in[bands];
  set(r, sirs_item::white_cells, (w && (*w > 12 || *w < 4)) || (b && *b > 10) ? 1 : 0);
  return r;
}

sofa_result sofa(const score_inputs& in) {
  sofa_result r;
  const auto& o2 = in[pao2];
  const auto& f = in[fio2];
  if (o2 && f && *f > 0) {
    int points = thresholded(std::span<const below>(sofa_pf_ratio), *o2 / *f);
    // Points 3 and 4 require respiratory support; unknown support does not cap them.
    if (in.mechanical_ventilation == false && points > 2) points = 2;
    set(r, sofa_item::respiration, points);
  } else {
    if (!o2) r.missing |= bit(pao2);
    if (!f) r.missing |= bit(fio2);
  }
  if (const auto& v = in[platelets]) {
    set(r, sofa_item::coagulation, thresholded(std::span<const below>(sofa_platelets), *v));
  } else {
    r.missing |= bit(platelets);
  }
  if (const auto& v = in[bilirubin]) {
    set(r, sofa_item::liver, thresholded(std::span<const at_least>(sofa_bilirubin), *v));
  } else {
    r.missing |= bit(bilirubin);
  }
  if (const auto& v = in[map]) {
    set(r, sofa_item::cardiovascular, *v < 70 ? 1 : 0);
  } else {
    r.missing |= bit(map);
  }
  if (const auto& v = in[gcs]) {
    set(r, sofa_item::cns, thresholded(std::span<const below>(sofa_gcs), rounded(*v)));
  } else {
    r.missing |= bit(gcs);
  }
  if (const auto& v = in[creatinine]) {
    set(r, sofa_item::renal, thresholded(std::span<const at_least>(sofa_creatinine), *v));
  } else {
    r.missing |= bit(creatinine);
  }
  return r;
}

void append_parameter_names(std::string& out, uint32_t mask) {
  bool first = true;
  for (size_t i = 0; i < parameter_count; ++i) {
    if ((mask & (uint32_t{1} << i)) == 0) continue;
    if (!first) out.push_back(',');
    out.append(info(static_cast<parameter>(i)).name);
    first = false;
  }
}

}  // namespace vigil::clinical
