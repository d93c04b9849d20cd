#pragma once

#include "runtime/operator.hpp"

namespace vigil::clinical {

/// Registers `clinical_alerts` (keyed by patient, stateful): turns the score records of
/// clinical_scores into alert episodes per patient and rule family, so that a deteriorating
/// patient pages once, escalates at once, and does not page the ward again every minute.
///
/// Input: keyed on exactly its `patient` field (string), with news2 (int64), news2_red (bool),
/// qsofa (int64), sirs (int64) and lactate (double, nullable), and optionally inputs (string,
/// quoted in the alert's reason): the "out" stream of clinical_scores.
///
/// Rules (config `rules`, a list, default all four) in three families, each with one episode
/// per patient:
/// - news2: level 1 `news2_urgent` when NEWS2 >= `news2_urgent` (int, default 5) or, with
///   `news2_red_urgent` (bool, default true), a single parameter scored 3; level 2
///   `news2_emergency` when NEWS2 >= `news2_emergency` (int, default 7).
/// - sepsis_qsofa: level 1 `sepsis_qsofa` when qSOFA >= `qsofa_threshold` (int, default 2).
/// - sepsis_sirs_lactate: level 1 `sepsis_sirs_lactate` when SIRS >= `sirs_threshold` (int,
///   default 2) and lactate > `lactate_threshold` (double mmol/L, default 2).
///
/// Episode state machine (event time), per patient and family:
/// - closed, level >= 1 at t: "open" at t, unless t is within `refractory` (duration, default
///   60m) of the family's last open or escalate: then the crossing is silent and the next score
///   record at or after the end of the refractory period opens the episode if still crossed.
/// - open, level above the episode's level: "escalate" at once (refractory does not hold back
///   an escalation); the episode's level rises.
/// - open, level 0 from t on: "resolve" at t + `resolve_after` (duration, default 2h) if no
///   score record in between reached level >= 1 (an event-time timer; the resolve record's
///   event time is t + resolve_after). A level that drops but stays >= 1 keeps the episode open
///   at its highest level.
/// Score records are buffered until the watermark passes their event time and applied in
/// event-time order (one record per patient and time; a second one for the same time replaces
/// the first). A record at or behind the watermark goes to the "late" port and is counted.
///
/// Ports: in "in" (keyed); out "out" (keyed on patient):
///   patient string, rule string (the rule of the episode's level), level int64 (1 urgent,
///   2 emergency for news2; 1 for the sepsis rules), action string (open|escalate|resolve),
///   event_time timestamp, score int64 (NEWS2, qSOFA or SIRS of the record; for resolve the
///   last one seen), reason string (e.g. "NEWS2 7 >= 7; inputs: heart_rate=131@...");
/// and "late" (the input's schema and key).
///
/// State per patient: value state "clinical_alerts_pending_by_time" with namespace = the event
/// time (the buffered score record of that time) and value state "clinical_alerts_episodes"
/// (per family: open, level, last page, below-threshold since, last score), erased when every
/// episode is closed and every refractory period is over. Checkpoints taken before the pending
/// records moved from the map state "clinical_alerts_pending" restore without the records that
/// were still buffered then.
void register_clinical_alerts_operator(operator_registry& r);

}  // namespace vigil::clinical
