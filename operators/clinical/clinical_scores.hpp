#pragma once

#include "runtime/operator.hpp"

namespace vigil::clinical {

/// Registers `clinical_scores` (keyed by patient, stateful): event-time NEWS2, qSOFA, SIRS and
/// SOFA per patient from the observation stream of clinical_ingest (after key_by patient).
///
/// Input: a stream keyed on exactly its `patient` field (string) with fields code (string),
/// value (double), status (string) and message_id (string); further fields are ignored. The
/// record's event time is the observation's time. Codes are the canonical LOINC codes of
/// normalize.hpp; values must be in their canonical units (clinical_ingest does both).
///
/// Config:
/// - `vitals_validity` (duration, default 4h): a vital sign (HR, RR, BP, temperature, SpO2,
///   FiO2, O2 flow, GCS) counts in a score at time t if it was observed in [t - validity, t].
/// - `labs_validity` (duration, default 24h): the same for labs (lactate, WBC, bands,
///   platelets, creatinine, bilirubin, PaO2, PaCO2).
/// - `spo2_scale2_code` (string, default "": nobody on Scale 2): the code of an observation
///   that puts the patient on NEWS2 SpO2 Scale 2 (value >= 1) or takes them off (value 0),
///   e.g. a local code a clinician sets for hypercapnic respiratory failure. The latest flag
///   holds until changed (while the patient has state, see below).
/// - `supplemental_o2_code` (string, default ""): the code of an observation stating
///   supplemental oxygen (value >= 1) or air (0); a vital sign. Without it, oxygen is inferred
///   from FiO2 > 0.21 or O2 flow > 0.
///
/// Semantics: observations are buffered in keyed state until the watermark passes their event
/// time (an event-time timer per distinct time), then applied in event-time order, ties by
/// code then message id, so the result does not depend on arrival order. Among observations
/// of one parameter at one event time, a corrected or amended one replaces a final one, which
/// replaces a preliminary one (same message id and code, or same code and time: a correction
/// replaces the value it corrects); equal statuses keep the greatest message id, and the
/// same (time, code, message id) twice with one status keeps the greater value. A later time
/// replaces the latest value of a parameter. Statuses other than final, amended, corrected
/// and preliminary (registered, cancelled, entered-in-error, unknown), and codes the scores do
/// not use, are dropped and counted in operator_context::dropped_records. For each distinct
/// event time t with applied observations, one score record is emitted at event time t.
/// An observation whose event time is at or behind the watermark is late: it goes to the
/// "late" port unchanged and is counted in operator_context::late_records (a correction that
/// arrives after its time was scored is late too).
///
/// Ports: in "in" (keyed); out "out" (keyed on patient) with
///   patient string, event_time timestamp, news2 int64, news2_scale int64 (1|2), news2_band
///   string (low|low_medium|medium|high), news2_red bool (a single item scored 3), qsofa int64,
///   sirs int64, sofa int64 (sum of the computable components), then the points of each item:
///   news2_resp_rate, news2_spo2, news2_air_or_oxygen, news2_sbp, news2_pulse,
///   news2_consciousness, news2_temperature, qsofa_resp_rate, qsofa_sbp, qsofa_mentation,
///   sirs_temperature, sirs_heart_rate, sirs_respiratory, sirs_white_cells, sofa_respiration,
///   sofa_coagulation, sofa_liver, sofa_cardiovascular, sofa_cns, sofa_renal (all int64),
///   lactate double? (the valid lactate in mmol/L, null when none), missing string (the
///   parameters without a valid value, comma-separated, e.g. "gcs,lactate"), inputs string
///   (each valid value with its time: "heart_rate=118@2024-03-12T14:30:00Z, ...");
/// and "late" (the input's schema and key).
///
/// State per patient: a value state "clinical_scores_pending_by_time" with namespace = the event
/// time (the buffered observations of that time, one blob, so that applying a time is one point
/// lookup) and a value state "clinical_scores_latest" (latest value and time per parameter).
/// Checkpoints taken before the pending state moved from the map state "clinical_scores_pending"
/// to it restore without the observations that were still buffered then. The latest
/// values are erased once the newest of them is older than the longer validity (a clean-up
/// timer), so idle patients leave no state behind.
void register_clinical_scores_operator(operator_registry& r);

}  // namespace vigil::clinical
