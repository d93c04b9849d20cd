#include "operators/clinical/scores.hpp"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace vigil::clinical {
namespace {

using enum parameter;
using edges = std::vector<std::pair<double, int>>;

score_inputs with(std::initializer_list<std::pair<parameter, double>> values) {
  score_inputs in;
  for (const auto& [p, v] : values) in[p] = v;
  return in;
}

int news2_points(const score_inputs& in, news2_item item) {
  return news2(in).points[static_cast<size_t>(item)];
}

/// Checks NEWS2 item `item` of parameter `p` at each (value, points).
void check_news2(parameter p, news2_item item, const edges& e, score_inputs base = {}) {
  for (const auto& [v, points] : e) {
    score_inputs in = base;
    in[p] = v;
    EXPECT_EQ(news2_points(in, item), points) << to_string(item) << " at " << v;
  }
}

TEST(News2, RespirationRateEdges) {
  check_news2(resp_rate, news2_item::resp_rate,
              {{8, 3},
               {9, 1},
               {11, 1},
               {12, 0},
               {20, 0},
               {21, 2},
               {24, 2},
               {25, 3},
               {8.4, 3},
               {8.5, 1},
               {0, 3},
               {60, 3}});
}

TEST(News2, Spo2Scale1Edges) {
  check_news2(spo2, news2_item::spo2,
              {{91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {100, 0}, {91.4, 3}});
  score_inputs on_o2;
  on_o2.supplemental_o2 = true;
  check_news2(spo2, news2_item::spo2, {{91, 3}, {96, 0}, {100, 0}}, on_o2);
}

TEST(News2, Spo2Scale2EdgesOnAirAndOnOxygen) {
  score_inputs air;
  air.hypercapnic = true;
  air.supplemental_o2 = false;
  check_news2(
      spo2, news2_item::spo2,
      {{83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {92, 0}, {93, 0}, {97, 0}, {100, 0}},
      air);
  score_inputs oxygen = air;
  oxygen.supplemental_o2 = true;
  check_news2(spo2, news2_item::spo2,
              {{83, 3},
               {84, 2},
               {85, 2},
               {86, 1},
               {87, 1},
               {88, 0},
               {92, 0},
               {93, 1},
               {94, 1},
               {95, 2},
               {96, 2},
               {97, 3},
               {100, 3}},
              oxygen);
  score_inputs unknown;
  unknown.hypercapnic = true;
  check_news2(spo2, news2_item::spo2, {{97, 0}}, unknown);
  score_inputs by_fio2 = with({{fio2, 0.28}});
  by_fio2.hypercapnic = true;
  check_news2(spo2, news2_item::spo2, {{97, 3}}, by_fio2);
  EXPECT_EQ(news2(by_fio2).spo2_scale, 2);
  EXPECT_EQ(news2(with({})).spo2_scale, 1);
}

TEST(News2, AirOrOxygen) {
  const auto points = [](score_inputs in) { return news2_points(in, news2_item::air_or_oxygen); };
  EXPECT_EQ(points(with({{fio2, 0.21}})), 0);
  EXPECT_EQ(points(with({{fio2, 0.22}})), 2);
  EXPECT_EQ(points(with({{o2_flow, 0}})), 0);
  EXPECT_EQ(points(with({{o2_flow, 2}})), 2);
  score_inputs flagged;
  flagged.supplemental_o2 = true;
  EXPECT_EQ(points(flagged), 2);
  score_inputs stated_air = with({{fio2, 0.4}});
  stated_air.supplemental_o2 = false;
  EXPECT_EQ(points(stated_air), 0) << "a stated flag wins";
  const news2_result unknown = news2(with({}));
  EXPECT_EQ(unknown.points[static_cast<size_t>(news2_item::air_or_oxygen)], 0);
  EXPECT_NE(unknown.missing & bit(fio2), 0u);
  EXPECT_EQ(news2(with({{o2_flow, 1}})).missing & bit(fio2), 0u);
}

TEST(News2, SystolicPressureEdges) {
  check_news2(sbp, news2_item::sbp,
              {{90, 3}, {91, 2}, {100, 2}, {101, 1}, {110, 1}, {111, 0}, {219, 0}, {220, 3}});
}

TEST(News2, PulseEdges) {
  check_news2(heart_rate, news2_item::pulse,
              {{40, 3},
               {41, 1},
               {50, 1},
               {51, 0},
               {90, 0},
               {91, 1},
               {110, 1},
               {111, 2},
               {130, 2},
               {131, 3}});
}

TEST(News2, ConsciousnessFromGcs) {
  check_news2(gcs, news2_item::consciousness, {{15, 0}, {14, 3}, {3, 3}, {14.6, 0}});
}

TEST(News2, TemperatureEdges) {
  check_news2(temperature, news2_item::temperature,
              {{35.0, 3},
               {35.1, 1},
               {36.0, 1},
               {36.1, 0},
               {38.0, 0},
               {38.1, 1},
               {39.0, 1},
               {39.1, 2},
               {35.04, 3},
               {38.04, 0},
               {38.06, 1}});
}

TEST(News2, AggregateBands) {
  // Chart 4: 0 low; 1-4 low; a single 3 low-medium; 5-6 medium; >= 7 high.
  const score_inputs normal = with({{resp_rate, 16},
                                    {spo2, 98},
                                    {fio2, 0.21},
                                    {sbp, 120},
                                    {heart_rate, 70},
                                    {gcs, 15},
                                    {temperature, 37}});
  news2_result r = news2(normal);
  EXPECT_EQ(r.total, 0);
  EXPECT_EQ(r.band, news2_band::low);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_FALSE(r.red);

  score_inputs four = normal;
  four[heart_rate] = 115;  // 2
  four[resp_rate] = 22;    // 2
  r = news2(four);
  EXPECT_EQ(r.total, 4);
  EXPECT_EQ(r.band, news2_band::low);

  score_inputs red = normal;
  red[resp_rate] = 26;  // 3
  r = news2(red);
  EXPECT_EQ(r.total, 3);
  EXPECT_TRUE(r.red);
  EXPECT_EQ(r.band, news2_band::low_medium);

  score_inputs five = four;
  five[temperature] = 38.5;  // 1
  r = news2(five);
  EXPECT_EQ(r.total, 5);
  EXPECT_EQ(r.band, news2_band::medium);

  score_inputs six = five;
  six[sbp] = 105;  // 1
  EXPECT_EQ(news2(six).total, 6);
  EXPECT_EQ(news2(six).band, news2_band::medium);

  score_inputs seven = six;
  seven[temperature] = 39.5;  // 2
  r = news2(seven);
  EXPECT_EQ(r.total, 7);
  EXPECT_EQ(r.band, news2_band::high);

  score_inputs red_five = red;
  red_five[heart_rate] = 115;  // 2
  EXPECT_EQ(news2(red_five).band, news2_band::medium) << "5 with a red score is medium";
}

TEST(News2, MissingParametersScoreZeroAndAreListed) {
  const news2_result r = news2(with({{resp_rate, 26}}));
  EXPECT_EQ(r.total, 3);
  EXPECT_EQ(r.missing,
            bit(spo2) | bit(fio2) | bit(sbp) | bit(heart_rate) | bit(gcs) | bit(temperature));
  std::string names;
  append_parameter_names(names, r.missing);
  EXPECT_EQ(names, "heart_rate,sbp,temperature,spo2,fio2,gcs");
}

TEST(Qsofa, Edges) {
  const auto q = [](score_inputs in) { return qsofa(in); };
  EXPECT_EQ(q(with({{resp_rate, 21}})).total, 0);
  EXPECT_EQ(q(with({{resp_rate, 22}})).total, 1);
  EXPECT_EQ(q(with({{sbp, 101}})).total, 0);
  EXPECT_EQ(q(with({{sbp, 100}})).total, 1);
  EXPECT_EQ(q(with({{gcs, 15}})).total, 0);
  EXPECT_EQ(q(with({{gcs, 14}})).total, 1);
  const qsofa_result all = q(with({{resp_rate, 30}, {sbp, 80}, {gcs, 10}}));
  EXPECT_EQ(all.total, 3);
  EXPECT_EQ(all.points, (std::array<int, 3>{1, 1, 1}));
  EXPECT_EQ(all.missing, 0u);
  EXPECT_EQ(q(with({{resp_rate, 30}})).missing, bit(sbp) | bit(gcs));
}

TEST(Sirs, Edges) {
  const auto total = [](score_inputs in) { return sirs(in).total; };
  EXPECT_EQ(total(with({{temperature, 38}})), 0);
  EXPECT_EQ(total(with({{temperature, 38.01}})), 1);
  EXPECT_EQ(total(with({{temperature, 36}})), 0);
  EXPECT_EQ(total(with({{temperature, 35.99}})), 1);
  EXPECT_EQ(total(with({{heart_rate, 90}})), 0);
  EXPECT_EQ(total(with({{heart_rate, 90.5}})), 1);
  EXPECT_EQ(total(with({{resp_rate, 20}})), 0);
  EXPECT_EQ(total(with({{resp_rate, 21}})), 1);
  EXPECT_EQ(total(with({{paco2, 32}})), 0);
  EXPECT_EQ(total(with({{paco2, 31.9}})), 1);
  EXPECT_EQ(total(with({{resp_rate, 25}, {paco2, 30}})), 1) << "one criterion";
  EXPECT_EQ(total(with({{wbc, 12}})), 0);
  EXPECT_EQ(total(with({{wbc, 12.1}})), 1);
  EXPECT_EQ(total(with({{wbc, 4}})), 0);
  EXPECT_EQ(total(with({{wbc, 3.9}})), 1);
  EXPECT_EQ(total(with({{bands, 10}})), 0);
  EXPECT_EQ(total(with({{bands, 10.5}})), 1);
  const sirs_result all =
      sirs(with({{temperature, 39}, {heart_rate, 120}, {resp_rate, 24}, {wbc, 15}}));
  EXPECT_EQ(all.total, 4);
  EXPECT_EQ(all.points, (std::array<int, 4>{1, 1, 1, 1}));
  EXPECT_EQ(all.missing, bit(paco2) | bit(bands));
}

int sofa_points(score_inputs in, sofa_item item) {
  return sofa(in).points[static_cast<size_t>(item)];
}

void check_sofa(parameter p, sofa_item item, const edges& e) {
  for (const auto& [v, points] : e) {
    score_inputs in;
    in[p] = v;
    EXPECT_EQ(sofa_points(in, item), points) << to_string(item) << " at " << v;
  }
}

TEST(Sofa, RespirationEdges) {
  // PaO2 / FiO2 with FiO2 0.5.
  for (const auto& [ratio, points] :
       edges{{400, 0}, {399, 1}, {300, 1}, {299, 2}, {200, 2}, {199, 3}, {100, 3}, {99, 4}}) {
    score_inputs in = with({{pao2, ratio * 0.5}, {fio2, 0.5}});
    EXPECT_EQ(sofa_points(in, sofa_item::respiration), points) << ratio;
    in.mechanical_ventilation = true;
    EXPECT_EQ(sofa_points(in, sofa_item::respiration), points) << ratio;
    in.mechanical_ventilation = false;
    EXPECT_EQ(sofa_points(in, sofa_item::respiration), std::min(points, 2))
        << "3 and 4 need respiratory support, at " << ratio;
  }
  const sofa_result no_fio2 = sofa(with({{pao2, 60}}));
  EXPECT_EQ(no_fio2.points[0], 0);
  EXPECT_NE(no_fio2.missing & bit(fio2), 0u);
  EXPECT_EQ(no_fio2.missing & bit(pao2), 0u);
}

TEST(Sofa, CoagulationEdges) {
  check_sofa(platelets, sofa_item::coagulation,
             {{150, 0}, {149, 1}, {100, 1}, {99, 2}, {50, 2}, {49, 3}, {20, 3}, {19, 4}});
}

TEST(Sofa, LiverEdges) {
  check_sofa(bilirubin, sofa_item::liver,
             {{1.19, 0}, {1.2, 1}, {1.9, 1}, {2.0, 2}, {5.9, 2}, {6.0, 3}, {11.9, 3}, {12, 4}});
}

TEST(Sofa, CardiovascularEdges) {
  check_sofa(map, sofa_item::cardiovascular, {{70, 0}, {69.9, 1}, {40, 1}});
}

TEST(Sofa, CnsEdges) {
  check_sofa(gcs, sofa_item::cns,
             {{15, 0}, {14, 1}, {13, 1}, {12, 2}, {10, 2}, {9, 3}, {6, 3}, {5, 4}, {3, 4}});
}

TEST(Sofa, RenalEdges) {
  check_sofa(creatinine, sofa_item::renal,
             {{1.19, 0}, {1.2, 1}, {1.9, 1}, {2.0, 2}, {3.4, 2}, {3.5, 3}, {4.9, 3}, {5.0, 4}});
}

TEST(Sofa, TotalIsTheSumOfComputableComponents) {
  const sofa_result r = sofa(with({{platelets, 90}, {creatinine, 2.5}, {map, 65}}));
  EXPECT_EQ(r.total, 5);
  EXPECT_EQ(r.missing, bit(pao2) | bit(fio2) | bit(bilirubin) | bit(gcs));
}

TEST(Scores, Names) {
  EXPECT_EQ(to_string(news2_band::low_medium), "low_medium");
  EXPECT_EQ(to_string(news2_item::air_or_oxygen), "air_or_oxygen");
  EXPECT_EQ(to_string(qsofa_item::mentation), "mentation");
  EXPECT_EQ(to_string(sirs_item::white_cells), "white_cells");
  EXPECT_EQ(to_string(sofa_item::cardiovascular), "cardiovascular");
}

}  // namespace
}  // namespace vigil::clinical
