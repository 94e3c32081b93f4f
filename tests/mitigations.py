"""Every hazard of docs/safety.md, the source mutations that switch its mitigation off, and the
tests that must then fail (issue 10, item 8: "a test that fails if the mitigation is removed",
machine-checked).

A Mutation is one or more exact text replacements in the firmware, host or HIL sources (each `old`
must occur exactly once in its file). `mitigation_runner.py` applies it to a temporary copy of the
tree, never to the working tree, and runs the named tests there in a subprocess: every named test
must fail, and pass on an unmutated copy. tests/test_docs_safety.py checks that every hazard of
docs/safety.md has at least one mutation here and that each mutation names at least one of the
tests its hazard's row lists.

`quick` marks the mutations `make test` may run (tests/test_mitigations.py: the first quick one of
each hazard, with only its tests in tests/core and tests/host, which take seconds); `make verify`
runs every mutation with all its tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    path: str          # relative to the repository
    old: str           # exact text, found exactly once in the file
    new: str


@dataclass(frozen=True)
class Mutation:
    hazard: str                  # "H14"
    name: str                    # what is switched off (an identifier: test ids use it)
    what: str                    # one line for people
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]       # "tests/...py::test_name" (all parametrizations)
    quick: bool = False


PUMP = "firmware/pumpcore/pump.py"
APP = "firmware/pumpfw/app.py"
STORAGE = "firmware/pumpfw/storage.py"
ALARMS = "firmware/pumpcore/alarms.py"
DISPATCH = "firmware/pumpcore/dispatch.py"
AUTH = "firmware/pumpcore/auth.py"
CATHETER = "firmware/pumpcore/catheter.py"
BAND_IN = "        self.band_in_nl = ceil_mul_div(volume_nl, tol_pct, 100 + tol_pct)\n"
BAND_OUT = "        self.band_out_nl = ceil_mul_div(volume_nl, tol_pct, 100 - tol_pct)\n"

LIFECYCLE = "tests/core/test_pump_lifecycle.py"
GATE = "tests/core/test_pump_bolus_gate.py"
PROGRAM = "tests/core/test_pump_alarms_program.py"
MOTOR = "tests/core/test_detect_motor.py"
SECURITY = "tests/core/test_dispatch_security.py"
ALARM_E2E = "tests/emulator/test_alarms_e2e.py"
BOARD_E2E = "tests/emulator/test_board_e2e.py"
CAMPAIGN = "tests/emulator/test_powercut_campaign.py"
GUARD = "tests/core/test_pump_dose_guard.py"
TIME_BASE = "tests/core/test_pump_time_base.py"
RESETS = "tests/core/test_pump_resets.py"
SEQUENCES = "tests/emulator/test_dose_safety_sequences.py"
FINDINGS = "tests/verify/test_findings.py"
CATHETER_PROPS = "tests/properties/test_catheter_guard_props.py"

MUTATIONS: tuple[Mutation, ...] = (
    # H1: exact integer delivery engine
    Mutation("H1", "engine_rounds_up", "a stroke falls due 1 nL early (rounding in the engine)",
             (Edit("firmware/pumpcore/delivery.py",
                   "        if nl >= self.stroke_nl:\n"
                   "            self._strokes += nl // self.stroke_nl\n"
                   "            nl = nl % self.stroke_nl\n",
                   "        if nl + 1 >= self.stroke_nl:\n"
                   "            self._strokes += (nl + 1) // self.stroke_nl\n"
                   "            nl = (nl + 1) % self.stroke_nl\n"),),
             ("tests/properties/test_delivery_props.py::"
              "test_strokes_never_exceed_and_stay_within_one_stroke_of_the_integral",
              f"{LIFECYCLE}::test_day_of_delivery_matches_schedule_integral_exactly",
              f"{BOARD_E2E}::test_a_day_of_therapy_matches_the_schedule_and_the_plant"),
             quick=True),
    # H2, H3: motor feedback versus command
    Mutation("H2", "no_over_infusion", "the over-infusion judgement never fires",
             (Edit("firmware/pumpcore/detect_motor.py",
                   "            over = fb * 100 > cmd * OVER_PCT\n", "            over = False\n"),),
             (f"{MOTOR}::test_over_infusion_edge_110_percent",
              f"{MOTOR}::test_runaway_without_command_is_over_infusion"), quick=True),
    Mutation("H3", "no_under_infusion", "the under-infusion judgement never fires",
             (Edit("firmware/pumpcore/detect_motor.py",
                   "            under = cmd > 0 and fb * 100 < cmd * UNDER_PCT\n",
                   "            under = False\n"),),
             (f"{MOTOR}::test_under_infusion_edge_90_percent",), quick=True),
    # H4: the on-pump library's limits on a program
    Mutation("H4", "no_hard_limit", "a program over the hard limit is not refused",
             (Edit("firmware/pumpcore/prescription.py",
                   "            if hard is not None and ng > hard:\n",
                   "            if False:\n"),),
             (f"{LIFECYCLE}::test_hard_limit_breach_is_refused_at_stage_and_changes_nothing",),
             quick=True),
    Mutation("H4", "no_soft_limit", "a program over the soft limit needs no confirmation",
             (Edit("firmware/pumpcore/prescription.py",
                   "            if soft is not None and ng > soft:\n",
                   "            if False:\n"),),
             (f"{LIFECYCLE}::test_soft_limit_breach_needs_confirmation",), quick=True),
    Mutation("H4", "no_titration_step", "a dose increase may be any size",
             (Edit("firmware/pumpcore/prescription.py",
                   "                if allowed is not None and ng - cur > allowed:\n",
                   "                if False:\n"),),
             ("tests/core/test_prescription.py::test_titration_step_absolute",), quick=True),
    Mutation("H4", "no_titration_interval", "dose increases may follow each other at once",
             (Edit("firmware/pumpcore/prescription.py",
                   "                        and age < entry.step_interval_ms:\n",
                   "                        and age < 0:\n"),),
             ("tests/core/test_prescription.py::test_titration_interval",), quick=True),
    # H5: the patient bolus gate
    Mutation("H5", "no_lockout", "the patient-bolus lockout is not checked",
             (Edit(PUMP, "        if self._lockout_remaining() > 0:\n", "        if False:\n"),),
             (f"{GATE}::test_bolus_active_then_lockout_from_start_of_last_bolus",
              "tests/properties/test_pump_props.py::"
              "test_a_patient_pressing_all_day_never_breaks_the_rules"), quick=True),
    Mutation("H5", "max_per_24h_off_by_one", "one patient bolus more than max_per_24h",
             (Edit(PUMP, "        if self.history.count_in_24h(self.mono.day, self.mono.ms) >= "
                         "p[\"max_per_24h\"]:\n",
                   "        if self.history.count_in_24h(self.mono.day, self.mono.ms) > "
                   "p[\"max_per_24h\"]:\n"),),
             (f"{GATE}::test_max_per_24h_counts_starts_in_preceding_24h",), quick=True),
    Mutation("H5", "bolus_dose_limit_late", "a bolus may reach one stroke over the hard limit",
             (Edit(PUMP, "            if self.ledger.total(d) + amount > hard:\n"
                         "                self._limit_detail = {",
                   "            if self.ledger.total(d) + amount > hard + 2500:\n"
                   "                self._limit_detail = {"),),
             (f"{GATE}::test_dose_limit_refusal_is_exact_at_the_edge",), quick=True),
    # H6: lockout on the monotonic clock
    Mutation("H6", "lockout_on_wall_clock", "the lockout is measured on the settable wall clock",
             (Edit(PUMP, "        return self.history.lockout_remaining_ms(self.mono.day, self.mono.ms,\n",
                   "        return self.history.lockout_remaining_ms(self.wall.day, self.wall.ms,\n"),),
             (f"{LIFECYCLE}::test_wall_clock_changes_do_not_shorten_lockout",), quick=True),
    # H7: concentration changes
    Mutation("H7", "new_admixture_needs_no_program", "a refill with a new drug keeps the old program",
             (Edit(PUMP, "            self.needs_program = True\n",
                   "            self.needs_program = False\n"),),
             (f"{LIFECYCLE}::test_refill_with_new_admixture_requires_a_new_program",), quick=True),
    Mutation("H7", "bridge_switches_at_once", "the new program applies before the old drug has left",
             (Edit(PUMP, "        if self._bridge is not None and "
                         "self.catheter.volume_holding_old(self._concs) == 0:\n",
                   "        if self._bridge is not None:\n"),),
             (f"{PROGRAM}::test_bridge_keeps_old_rate_until_new_admixture_reaches_tip",),
             quick=True),
    # H8: occlusion
    Mutation("H8", "no_stroke_occlusion_detector", "the stroke-response occlusion detector never raises",
             (Edit("firmware/pumpcore/detect_occlusion.py",
                   "        if ((self.flat_run >= 2 and step_ok) or self.slow_count >= SLOW_COUNT_ALARM\n",
                   "        if False and ((self.flat_run >= 2 and step_ok)"
                   " or self.slow_count >= SLOW_COUNT_ALARM\n"),),
             (f"{ALARM_E2E}::test_complete_occlusion_alarms_within_two_strokes_and_stops_flow",
              f"{ALARM_E2E}::test_partial_occlusion_alarms_within_ten_strokes")),
    Mutation("H8", "occlusion_does_not_stop", "an occlusion alarm lets flow continue",
             (Edit(ALARMS, "    (OCCLUSION, HIGH, STOP),\n", "    (OCCLUSION, HIGH, CONTINUE),\n"),),
             (f"{ALARM_E2E}::test_complete_occlusion_alarms_within_two_strokes_and_stops_flow",)),
    Mutation("H8", "missed_basal_made_up", "basal missed while stopped by an alarm is made up later",
             (Edit(PUMP, "        if not self.motor_on:\n            return\n"
                         "        n = self.engine.advance(dt)\n",
                   "        if not self.motor_on:\n"
                   "            if state == SM.ALARM_STOP and self.rx is not None:\n"
                   "                self.engine.pending_nl += self.basal_rate_nl_per_h * dt // 3_600_000\n"
                   "            return\n"
                   "        n = self.engine.advance(dt)\n"),),
             (f"{ALARM_E2E}::test_release_after_occlusion_clears_is_bounded_and_not_made_up",)),
    Mutation("H8", "ack_resumes_flow", "acknowledging a cleared occlusion restarts delivery",
             (Edit("firmware/pumpcore/statemachine.py",
                   "    (ALARM_STOP, ACK, STOPPED, \"no_stopping_alarm\"),\n",
                   "    (ALARM_STOP, ACK, RUNNING, \"no_stopping_alarm\"),\n"),),
             (f"{ALARM_E2E}::test_release_after_occlusion_clears_is_bounded_and_not_made_up",)),
    # H9, H10: dislodgement and leak
    Mutation("H9", "no_dislodgement_alarm", "sensing windows never raise dislodgement",
             (Edit("firmware/pumpcore/detect_catheter.py",
                   "                self.active = DISLODGEMENT\n                return EV_DISLODGEMENT\n",
                   "                return None\n"),),
             (f"{ALARM_E2E}::test_dislodgement_and_leak_alarm_within_three_windows",)),
    Mutation("H10", "no_leak_alarm", "sensing windows never raise leak",
             (Edit("firmware/pumpcore/detect_catheter.py",
                   "                    self.active = LEAK\n                    return EV_LEAK\n",
                   "                    return None\n"),),
             (f"{ALARM_E2E}::test_dislodgement_and_leak_alarm_within_three_windows",)),
    # H11: motor stall
    Mutation("H11", "no_stall_alarm", "a stroke and its retry without feedback raise nothing",
             (Edit("firmware/pumpcore/detect_motor.py",
                   "            self.stalled = True\n            return EV_STALL\n",
                   "            return None\n"),),
             (f"{MOTOR}::test_stall_needs_one_failed_retry",
              f"{ALARM_E2E}::test_motor_stall_alarms_after_one_retry_and_stops"), quick=True),
    Mutation("H11", "no_stall_retry", "a missing feedback pulse stalls without the one retry",
             (Edit("firmware/pumpcore/detect_motor.py",
                   "        if self.misses == 1:\n            return RETRY\n", ""),),
             (f"{MOTOR}::test_stall_needs_one_failed_retry",), quick=True),
    # H12: reservoir
    Mutation("H12", "no_reservoir_empty_alarm", "the empty threshold raises nothing",
             (Edit(PUMP, "        if res.is_empty():\n            self.raise_alarm(A.RESERVOIR_EMPTY)\n",
                   "        if False:\n            self.raise_alarm(A.RESERVOIR_EMPTY)\n"),),
             (f"{PROGRAM}::test_reservoir_low_alerts_and_flow_continues_then_empty_stops",),
             quick=True),
    Mutation("H12", "reservoir_times_without_bolus", "times to low/empty ignore the bolus rate",
             (Edit(PUMP, "        r = self.engine.rate_nl_per_h\n",
                   "        r = self.basal_rate_nl_per_h\n"),),
             (f"{PROGRAM}::test_reservoir_times_recomputed_at_bolus_start",), quick=True),
    Mutation("H12", "reservoir_times_not_at_bolus_start",
             "times to low/empty not recomputed at a bolus start",
             (Edit(PUMP, "            self.engine.set_rate(total)\n            self._recompute_times()\n",
                   "            self.engine.set_rate(total)\n"),
              Edit(PUMP, "        self._update_rate()\n        self._recompute_times()   # reservoir times "
                         "at the start of every bolus (GIP)\n",
                   "        self._update_rate()\n")),
             (f"{PROGRAM}::test_reservoir_times_recomputed_at_bolus_start",), quick=True),
    # H13: battery
    Mutation("H13", "battery_first_hour_extrapolated", "usage before a whole day is the hour extrapolated",
             (Edit("firmware/pumpcore/detect_battery.py",
                   "        if self.days_recorded == 0:\n            return None\n",
                   "        if self.days_recorded == 0:\n"
                   "            return self.today_uah * 86400000 // max(1, self.ms_in_day) or None\n"),),
             ("tests/core/test_detect_battery.py::"
              "test_a_burst_on_the_first_day_is_not_extrapolated_into_an_eri",), quick=True),
    Mutation("H13", "no_battery_voltage_backstop", "the cell voltage raises no battery alarm",
             (Edit("firmware/pumpfw/supervisor.py",
                   "            if mv <= limit:\n                pump.raise_alarm(code)\n",
                   "            if False:\n                pump.raise_alarm(code)\n"),),
             (f"{ALARM_E2E}::test_battery_end_of_service_stops_and_elective_replacement_warns",)),
    Mutation("H13", "eos_does_not_stop", "end of service lets flow continue",
             (Edit(ALARMS, "    (BATTERY_EOS, HIGH, STOP),\n", "    (BATTERY_EOS, HIGH, CONTINUE),\n"),),
             (f"{ALARM_E2E}::test_battery_end_of_service_stops_and_elective_replacement_warns",)),
    # H14: resets during therapy
    Mutation("H14", "save_in_place", "the state record is rewritten in place (no temporary file + rename)",
             (Edit(STORAGE, "        body = json.dumps(obj, separators=(\",\", \":\")).encode()\n"
                            "        tmp = name + \".tmp\"\n",
                   "        body = json.dumps(obj, separators=(\",\", \":\")).encode()\n"
                   "        tmp = name\n"),
              Edit(STORAGE, "        self.fs.rename(tmp, name)\n        self.writes += 1\n\n    def load(",
                   "        self.writes += 1\n\n    def load(")),
             (f"{BOARD_E2E}::test_a_power_cut_during_a_state_save_leaves_the_previous_record",
              f"{CAMPAIGN}::test_every_write_cut_or_torn_boots_the_last_record_within_the_bounds")),
    Mutation("H14", "replies_before_record",
             "replies and event lines leave the board before the record of the command's effect",
             (Edit(APP, "        self.storage.append_log(events + sec)\n"
                        "        self._save_state()\n"
                        "        for line in lines:\n",
                   "        for line in lines:\n"),
              Edit(APP, "  # events: every link",
                   "  # events: every link\n"
                   "        self.storage.append_log(events + sec)\n"
                   "        self._save_state()")),
             (f"{BOARD_E2E}::test_an_acknowledged_command_is_on_flash_before_its_reply_leaves",)),
    Mutation("H14", "no_write_ahead_record",
             "strokes beyond the reservation are made before a record covers them",
             (Edit(APP, "            if pump.record_due():\n"
                        "                self._save_state()   # write-ahead",
                   "            if False:\n                self._save_state()   # write-ahead"),),
             # (test_board_e2e's test_a_power_cut_never_hides_delivery_... passes with this mutation:
             # its cuts fall between loop steps, after the end-of-step record; only a cut inside
             # the step, between the strokes and that record, shows the missing write-ahead)
             (f"{CAMPAIGN}::test_every_write_cut_or_torn_boots_the_last_record_within_the_bounds",)),
    Mutation("H14", "reservation_not_presumed", "a reset does not count the record's reservation",
             (Edit(PUMP, "        if presumed:\n            self._presume_strokes(presumed)\n", ""),),
             (f"{RESETS}::test_the_reservation_is_counted_as_delivered_after_a_reset",
              f"{BOARD_E2E}::test_a_power_cut_never_hides_delivery_and_presumes_at_most_the_reservation",
              f"{CAMPAIGN}::test_every_write_cut_or_torn_boots_the_last_record_within_the_bounds"),
             quick=True),
    Mutation("H14", "no_feed_on_waking", "the loop does not feed the watchdog when it wakes",
             (Edit(APP, "the board has just slept.\n        hal.wdt_feed()\n",
                   "the board has just slept.\n"),),
             (f"{BOARD_E2E}::test_a_stroke_due_a_full_sleep_after_the_last_feed_does_not_trip_the_watchdog",)),
    Mutation("H14", "no_resume_after_reset", "intact therapy does not resume after a reset",
             (Edit(APP, "            pump.boot(resume=pump.was_running())\n", "            pump.boot()\n"),),
             (f"{BOARD_E2E}::test_power_cycle_resumes_intact_therapy_and_keeps_counters",)),
    # H15: corrupt or lost persisted state
    Mutation("H15", "no_integrity_check", "a record whose body does not match its MAC line is used",
             (Edit(STORAGE, "        if not _auth.equal_ct(wire.to_hex(self._mac.digest(body)).encode(),"
                            " data[:nl]):\n            return CORRUPT, None\n", ""),),
             (f"{BOARD_E2E}::test_damaged_state_enters_safe_state_with_alarm",)),
    Mutation("H15", "partial_restore_kept", "a snapshot that fails half way leaves what it restored",
             (Edit(PUMP, "            self.__init__(self.stroke_nl, self.library)\n"
                         "            return R.STATE_CORRUPT\n",
                   "            return R.STATE_CORRUPT\n"),),
             (f"{PROGRAM}::test_corrupt_snapshot_is_refused_whole",), quick=True),
    # H16: firmware fault
    Mutation("H16", "fail_safe_keeps_state", "the fail-safe handler does not enter the safe state",
             (Edit(APP, "            self.pump.fail_safe(type(exc).__name__)\n", "            pass\n"),),
             (f"{BOARD_E2E}::test_firmware_exception_goes_fail_safe_and_watchdog_resets_into_safe_state",)),
    # H17: authentication and roles
    Mutation("H17", "tag_not_verified", "the HMAC tag of a request is not verified",
             (Edit(AUTH, " or not equal_ct(mac.tag(body), tag_hex):\n", ":\n"),),
             (f"{SECURITY}::test_wrong_key_and_missing_key",
              f"{SECURITY}::test_tampered_requests_refused_untagged"),
             quick=True),
    Mutation("H17", "roles_not_enforced", "any role may use any command",
             (Edit(DISPATCH, "        if cmd != commands.HELLO and role not in row.roles:\n",
                   "        if False:\n"),),
             (f"{SECURITY}::test_roles_are_enforced",), quick=True),
    Mutation("H17", "unauthenticated_commands", "commands other than hello run without a role",
             (Edit(DISPATCH, "            if cmd != commands.HELLO:\n"
                             "                return self._refuse(ln, link, req_id, reasons.AUTH_REQUIRED,",
                   "            if False:\n"
                   "                return self._refuse(ln, link, req_id, reasons.AUTH_REQUIRED,"),),
             (f"{SECURITY}::test_unauthenticated_only_hello",), quick=True),
    # H18: replay, re-order, duplicate
    Mutation("H18", "counter_not_checked", "a request with an old counter is accepted",
             (Edit(AUTH, "        if not wire.counter_after(counter, last):\n"
                         "            return reasons.STALE_COUNTER\n", ""),),
             (f"{SECURITY}::test_reorder_and_rollback_refused",
              f"{SECURITY}::test_replay_after_cache_eviction_is_stale"), quick=True),
    Mutation("H18", "resend_executes_again", "a resent request runs again instead of its cached reply",
             (Edit(DISPATCH, "                if entry[1] == signed:\n                    return entry[2]",
                   "                if False:\n                    return entry[2]"),),
             (f"{SECURITY}::test_duplicate_request_id_executes_once",), quick=True),
    Mutation("H18", "counter_not_persisted_first", "the counter is not persisted before the command runs",
             (Edit(DISPATCH, "        if row.changes and self.persist is not None:\n",
                   "        if False:\n"),),
             (f"{SECURITY}::test_counter_persisted_before_execution",), quick=True),
    # H19: malformed input
    Mutation("H19", "malformed_lines_unanswered", "a malformed request line gets no named error",
             (Edit(DISPATCH, "        except wire.WireError as e:\n"
                             "            return self._refuse(ln, link, e.req_id, e.reason, e.msg)\n",
                   "        except wire.WireError:\n            return None\n"),),
             ("tests/host/test_fuzz_dispatch.py::test_mutated_requests_are_refused",), quick=True),
    # H20: alarms
    Mutation("H20", "long_silence", "silence mutes for 20 min instead of 2",
             (Edit(ALARMS, "        self.silenced_until_s = now_s + SILENCE_S\n",
                   "        self.silenced_until_s = now_s + 10 * SILENCE_S\n"),),
             ("tests/core/test_alarms.py::test_silence_mutes_at_most_two_minutes_and_cannot_disable",),
             quick=True),
    Mutation("H20", "clears_without_ack", "an alarm clears when its condition goes, unacknowledged",
             (Edit(ALARMS, "        if self.latched[i] and self.acked[i] and not self.condition[i]:\n",
                   "        if self.latched[i] and not self.condition[i]:\n"),),
             ("tests/core/test_alarms.py::test_alarm_latches_until_acknowledged_and_condition_gone",),
             quick=True),
    # H21: withdrawal caused by the pump
    Mutation("H21", "dislodgement_stops_flow", "a dislodgement alarm stops flow",
             (Edit(ALARMS, "    (DISLODGEMENT, HIGH, CONTINUE),\n", "    (DISLODGEMENT, HIGH, STOP),\n"),),
             (f"{PROGRAM}::test_dislodgement_continues_flow_but_blocks_boluses",), quick=True),
    Mutation("H21", "leak_stops_flow", "a leak alarm stops flow",
             (Edit(ALARMS, "    (LEAK, HIGH, CONTINUE),\n", "    (LEAK, HIGH, STOP),\n"),),
             (f"{ALARM_E2E}::test_dislodgement_and_leak_alarm_within_three_windows",)),
    # H26: the host trusts only what the pump tagged
    Mutation("H26", "events_not_verified", "the host shows event lines whose tags do not verify",
             (Edit("host/pumphost/client.py",
                   "            if key is not None and not signing.verifies(key, body, tags[i]):\n",
                   "            if False:\n"),),
             ("tests/host/test_host_verify.py::test_events_forged_lost_or_replayed_are_detected",),
             quick=True),
    Mutation("H26", "replies_not_verified", "the host takes a reply whose tag does not verify",
             (Edit("host/pumphost/client.py",
                   "            if key is None or not signing.verifies(key,"
                   " signing.reply_text(req_body, body), tag):\n",
                   "            if key is None:\n"),),
             ("tests/emulator/test_protocol_attacks.py::test_the_host_shows_nothing_the_pump_did_not_say",)),
    # H27: floods of refused frames
    Mutation("H27", "no_throttling", "a link that keeps failing is never throttled",
             (Edit(DISPATCH, "        if ln.streak >= THROTTLE_AFTER:\n"
                             "            ln.hold_ms = ln.next_hold_ms\n",
                   "        if False:\n            ln.hold_ms = ln.next_hold_ms\n"),),
             (f"{SECURITY}::test_throttling_is_per_link_and_skips_the_hmac",), quick=True),
    Mutation("H27", "refusals_logged_each", "every refused frame is written to the security log",
             (Edit(DISPATCH, "        self._count(reason, role, link)\n        self._failed(ln)\n"
                             "        return self._safe_error(req_id, reason, msg, extra)\n",
                   "        self._count(reason, role, link)\n        self._failed(ln)\n"
                   "        self._record({\"kind\": \"auth_refused\", \"reason\": reason, \"role\": role})\n"
                   "        return self._safe_error(req_id, reason, msg, extra)\n"),),
             ("tests/emulator/test_protocol_attacks.py::test_refused_frames_cost_no_flash_write",)),
    # H28: only the latest acknowledged program runs; a reset keeps what the clinician established
    Mutation("H28", "waiting_not_superseded", "a commit leaves an earlier pending program waiting",
             (Edit(PUMP, "        self._supersede_waiting(review[\"checksum\"])\n", ""),),
             (f"{FINDINGS}::test_a_superseded_program_never_runs_on_a_new_admixture",
              f"{FINDINGS}::test_a_later_commit_supersedes_a_program_waiting_for_its_stroke_boundary",
              f"{FINDINGS}::test_a_replaced_pending_program_stops_holding_delivery")),
    Mutation("H28", "waiting_not_recorded", "a program waiting to apply is not in the state record",
             (Edit(PUMP, "\"waiting\": self._waiting_snapshot(),", "\"waiting\": None,"),),
             (f"{FINDINGS}::test_a_program_waiting_for_its_stroke_boundary_survives_a_reset",)),
    Mutation("H28", "reset_leaves_safe_state", "a reset boots a safe-state record into stopped",
             (Edit(PUMP, "if self.alarms.safe_latched() or self._restored_state == SM.SAFE_STATE:",
                   "if self.alarms.safe_latched():"),),
             (f"{FINDINGS}::test_a_reset_does_not_leave_the_safe_state",)),
    Mutation("H28", "reset_restarts_unknown_admixture",
             "a reset restarts therapy after a new-admixture refill without its program",
             (Edit(PUMP, "return R.PROGRAM_REQUIRED if self.needs_program else None", "return None"),),
             (f"{FINDINGS}::test_a_reset_after_a_new_admixture_refill_does_not_restart_therapy",)),
    Mutation("H28", "alarm_stop_stuck", "an ack with nothing left to acknowledge keeps alarm_stop",
             (Edit(PUMP, "if code != R.OK and not leaving:", "if code != R.OK:"),),
             (f"{FINDINGS}::test_alarm_stop_is_left_once_the_refill_clears_an_acknowledged_empty_reservoir",)),
    Mutation("H28", "counted_strokes_dropped", "the shell drops counted strokes once the motor state ended",
             (Edit(APP, "if enabled and not pump.motor_enabled():", "if not pump.motor_enabled():"),),
             (f"{FINDINGS}::test_a_prime_counts_only_the_strokes_it_makes",
              f"{BOARD_E2E}::test_priming_makes_every_stroke_it_counts")),
    # H22: periodic spacing on the monotonic clock
    Mutation("H22", "no_periodic_spacing", "a periodic start time may start again within 23 h",
             (Edit(PUMP, "        if last is not None and diff_ms(last[0], last[1], mono.day, mono.ms,\n",
                   "        if False and diff_ms(last[0], last[1], mono.day, mono.ms,\n"),),
             (f"{TIME_BASE}::test_setting_the_clock_back_after_each_periodic_bolus_never_repeats_it",
              f"{TIME_BASE}::test_dst_autumn_repeats_nothing_and_spring_gives_the_bolus",
              f"{TIME_BASE}::test_eastward_travel_skips_each_start_once_then_follows_local_time",
              f"{TIME_BASE}::test_periodic_spacing_survives_a_reset",
              f"{SEQUENCES}::test_setting_the_clock_back_after_every_periodic_bolus_gives_it_once_a_day"),
             quick=True),
    # H23: the continuous dose guard
    Mutation("H23", "no_dose_guard", "every stroke is admitted, whatever the rolling 24 h",
             (Edit(PUMP, "            if h is not None and e and \\\n                    ledger.total(d) + e"
                         " + (e * tol + self._margin_rem[d] + 99) // 100 > h:\n",
                   "            if False:\n"),),
             (f"{GUARD}::test_basal_and_periodic_cannot_carry_the_rolling_24h_past_the_hard_limit",
              f"{GUARD}::test_the_guard_stops_a_priming_bolus_at_the_limit",
              f"{SEQUENCES}::test_basal_and_periodic_delivery_stop_at_the_hard_limit_with_a_medium_alarm"),
             quick=True),
    Mutation("H23", "hold_without_alarm", "a hold raises no dose_limit_hold alarm",
             (Edit(PUMP, "        self.raise_alarm(A.DOSE_LIMIT_HOLD)\n"
                         "        if self.arbiter.active is not None:   # cancelled",
                   "        if self.arbiter.active is not None:   # cancelled"),),
             (f"{GUARD}::test_a_hold_cancels_the_active_bolus_and_blocks_boluses_until_acknowledged",),
             quick=True),
    Mutation("H23", "held_strokes_owed", "a held stroke is owed and made once the window allows",
             (Edit(PUMP, "            if self._admit():\n                self._stroke()\n"
                         "            n -= 1\n",
                   "            if self._admit():\n                self._stroke()\n            else:\n"
                   "                self.engine.pending_nl += self.stroke_nl\n            n -= 1\n"),),
             (f"{GUARD}::test_held_strokes_are_never_made_up",)),
    Mutation("H23", "periodic_not_dose_checked", "a periodic bolus starts without the dose check",
             (Edit(PUMP, "        code = self._dose_limit_check(e[\"volume_nl\"])\n",
                   "        code = R.OK\n"),),
             (f"{GUARD}::test_basal_and_periodic_cannot_carry_the_rolling_24h_past_the_hard_limit",),
             quick=True),
    # H24: resets are counted, alarmed and looped
    Mutation("H24", "silent_reset", "an unexpected reset raises no alarm",
             (Edit(PUMP, "        self.alarms.raise_(code, now)\n"
                         "        self.alarms.condition_gone(code, now)\n", ""),),
             (f"{RESETS}::test_every_reset_is_logged_and_alarmed_with_its_cause",
              f"{SEQUENCES}::test_a_firmware_hang_is_a_logged_alarmed_reset_and_the_bolus_is_not_resumed"),
             quick=True),
    Mutation("H24", "no_reset_loop", "three resets within an hour are no reset loop",
             (Edit(PUMP, "        loop = recent >= RESET_LOOP_N\n", "        loop = False\n"),),
             (f"{RESETS}::test_three_resets_within_an_hour_are_a_reset_loop_and_stop_in_the_safe_state",
              f"{SEQUENCES}::test_a_hang_at_every_boot_ends_in_the_safe_state_with_a_high_alarm",
              f"{SEQUENCES}::test_fifty_power_cuts_in_a_day_are_a_reset_loop"), quick=True),
    Mutation("H24", "interrupted_bolus_unreported", "a bolus interrupted by a reset is not logged",
             (Edit(PUMP, "            self._log(\"bolus_interrupted\", bolus.get(\"kind\"),\n",
                   "            (\"bolus_interrupted\", bolus.get(\"kind\"),\n"),),
             (f"{RESETS}::test_an_interrupted_bolus_is_reported_and_not_resumed",), quick=True),
    # H25: strokes counted at the top of the mechanism's accuracy
    Mutation("H25", "nominal_strokes", "the ledger and dose checks count a stroke's nominal volume",
             (Edit(PUMP, "STROKE_TOLERANCE_PCT = 5\n", "STROKE_TOLERANCE_PCT = 0\n"),),
             (f"{LIFECYCLE}::test_day_of_delivery_matches_schedule_integral_exactly",
              f"{SEQUENCES}::test_basal_and_periodic_delivery_stop_at_the_hard_limit_with_a_medium_alarm"),
             quick=True),
    Mutation("H25", "boundaries_at_nominal",
             "the catheter's boundaries move by the nominal stroke (no band)",
             (Edit(CATHETER, BAND_IN, "        self.band_in_nl = 0\n"),
              Edit(CATHETER, BAND_OUT, "        self.band_out_nl = 0\n")),
             (f"{CATHETER_PROPS}::test_within_the_band_what_truly_leaves_never_exceeds_what_is_counted",
              f"{FINDINGS}::test_at_the_documented_plus_5_percent_the_true_24_h_stays_within_the_hard_limit",
              f"{LIFECYCLE}::test_prime_fills_catheter_without_patient_dose_then_stops")),
    Mutation("H25", "tail_forgotten",
             "what left the tip is forgotten at once (a slow mechanism's late exit uncounted)",
             (Edit(CATHETER, BAND_OUT, "        self.band_out_nl = 0\n"),),
             (f"{CATHETER_PROPS}::test_within_the_band_what_truly_leaves_never_exceeds_what_is_counted",)),
)


def by_name() -> dict[str, Mutation]:
    return {m.name: m for m in MUTATIONS}
