#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The judge of the kernel matrix judged: canned console logs in, failures out (no root, no QEMU)."""
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix  # noqa: E402

HEAD = """\
[    0.000000] Linux version 6.1.0 (noise before the suite)
@@kmx begin kernel=6.1.0-50-amd64 id=6.1 uptime=1.90 cpus=1 mem_kb=987704
@@kmx run probe /kmx/aurum --probe
@@kmx out probe feature=tp_btf available=yes
@@kmx out probe feature=task_storage available=yes
@@kmx rc probe 0 0.10
"""
CHECK_OK = """\
@@kmx run check /kmx/aurum --check
@@kmx out check hook=sched/sched_switch variant=tp_btf+task_storage mandatory=yes
@@kmx out check hook=net/sock_send_length variant=unavailable: no such tracepoint mandatory=no
@@kmx rc check 0 0.80
@@kmx run check-off-task_storage /kmx/aurum --check --force-off task_storage
@@kmx out check-off-task_storage hook=sched/sched_switch variant=tp_btf+hash mandatory=yes
@@kmx rc check-off-task_storage 0 0.70
@@kmx run check-off-task_storage+tp_btf+raw_tp /kmx/aurum --check --force-off task_storage,tp_btf,raw_tp
@@kmx err check-off-task_storage+tp_btf+raw_tp aurum: sched: mandatory hook sched_switch unavailable
@@kmx rc check-off-task_storage+tp_btf+raw_tp 1 0.20
"""
SMOKE = """\
@@kmx fact agent_healthy=1 agent_ready_seconds=1.2
@@kmx fact burn_cpu_seconds=3.00 burn_wall_seconds=3 http_200=20 http_404=5 blob_bytes=100000 http_200_wanted=20 http_404_wanted=5
@@kmx metric # TYPE process_cpu_time_seconds_total counter
@@kmx metric process_cpu_time_seconds_total{service_name="kmx-burner"} %(cpu)s
@@kmx metric aurum_probe_attached{component="net",probe="sock_send_length",variant=""} 0
@@kmx metric aurum_probe_attached{component="sched",probe="sched_switch",variant="tp_btf"} 1
@@kmx fact scrape_ok=1 metric_lines=4
@@kmx rc smoke-agent 0 9.00
@@kmx end uptime=20.0
"""
EXPECT = """\
# comment
cpu   process_cpu_time_seconds_total{service_name="kmx-burner"}  >=  burn_cpu_seconds * 0.9 - 0.1
http? http_server_request_duration_seconds_count{service_name="kmx-httpd",http_response_status_code="200"}  ==  http_200
"""


class JudgeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.tests = os.path.join(self.dir, "t")
        os.mkdir(self.tests)
        with open(os.path.join(self.tests, "expect.txt"), "w") as f:
            f.write(EXPECT)
        self.degraded("6.1 net/sock_send_length\n")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def degraded(self, text):
        with open(os.path.join(self.tests, "degraded.txt"), "w") as f:
            f.write("# kernel signals\n" + text)

    def judge(self, console):
        with open(os.path.join(self.dir, "6.1.console.log"), "w") as f:
            f.write(console)
        run = matrix.parse_run(self.dir, "6.1")
        return matrix.judge(run, matrix.load_expectations(self.tests),
                            matrix.load_degraded(self.tests).get("6.1", set()))

    def test_a_good_run_passes(self):
        fails, notes, rows = self.judge(HEAD + CHECK_OK + SMOKE % {"cpu": "2.95"})
        self.assertEqual(fails, [])
        # the forced run that ends a fallback chain is a note, not a failure
        self.assertEqual(len(notes), 1)
        self.assertIn("mandatory hook sched_switch unavailable", notes[0])
        self.assertEqual([r[6] for r in rows], ["ok", "pending"])

    def test_a_counter_that_reads_too_little_fails(self):
        fails, _, _ = self.judge(HEAD + CHECK_OK + SMOKE % {"cpu": "0"})
        self.assertEqual(len(fails), 1)
        self.assertIn("process_cpu_time_seconds_total", fails[0])

    def test_a_verifier_rejection_fails_with_the_agents_words(self):
        check = ("@@kmx run check /kmx/aurum --check\n"
                 "@@kmx err check ts=1 level=warn msg=\"libbpf: R1 unbounded memory access\"\n"
                 "@@kmx err check aurum: load sched BPF programs: Permission denied\n"
                 "@@kmx rc check 1 0.5\n")
        fails, _, _ = self.judge(HEAD + check)
        self.assertTrue(any("load sched BPF programs: Permission denied" in f for f in fails))
        self.assertTrue(any("did not finish" in f for f in fails))

    def test_a_mandatory_hook_missing_fails_even_if_exit_is_zero(self):
        check = CHECK_OK.replace("variant=tp_btf+task_storage mandatory=yes",
                                 "variant=unavailable: verifier mandatory=yes", 1)
        fails, _, _ = self.judge(HEAD + check + SMOKE % {"cpu": "3"})
        self.assertTrue(any("mandatory hook sched/sched_switch" in f for f in fails))
        self.assertTrue(any("exited 0 although" in f for f in fails))

    def test_a_forced_feature_still_in_use_fails(self):
        check = CHECK_OK.replace("variant=tp_btf+hash mandatory=yes", "variant=tp_btf+task_storage mandatory=yes")
        fails, _, _ = self.judge(HEAD + check + SMOKE % {"cpu": "3"})
        self.assertTrue(any("still uses tp_btf+task_storage" in f for f in fails))

    def test_degraded_list_must_match_both_ways(self):
        self.degraded("6.1 -\n")
        fails, _, _ = self.judge(HEAD + CHECK_OK + SMOKE % {"cpu": "3"})
        self.assertTrue(any("degraded" in f and "net/sock_send_length" in f for f in fails))

    def test_a_pending_signal_applies_once_its_family_appears(self):
        smoke = SMOKE % {"cpu": "3"} + \
            "@@kmx metric http_server_request_duration_seconds_count{service_name=\"busybox\"} 20\n"
        fails, _, rows = self.judge(HEAD + CHECK_OK + smoke)
        self.assertEqual(rows[1][6], "FAIL")
        self.assertTrue(any("absent" in f for f in fails))

    def test_a_workload_that_did_not_happen_fails(self):
        smoke = (SMOKE % {"cpu": "3"}).replace("http_200=20 ", "http_200=0 ")
        fails, _, _ = self.judge(HEAD + CHECK_OK + smoke)
        self.assertTrue(any("port taken" in f for f in fails))

    def test_a_guest_that_never_booted(self):
        fails, _, _ = self.judge("[ 0.1] Kernel panic - not syncing: VFS\n")
        self.assertEqual(len(fails), 1)
        self.assertIn("never started", fails[0])


if __name__ == "__main__":
    unittest.main()
