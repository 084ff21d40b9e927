#!/usr/bin/env python3
"""The cluster scripts of docs/cluster.md, run here without a cluster.

scripts/cluster/shards.sbatch and merge.sbatch run as the bash scripts they are, with the
variables Slurm would set for an array of 3 tasks (--array=0-2); the Kubernetes manifests are
parsed, their Indexed Job settings checked, and the shell command of each container run with the
index its pod would get. What this proves: the scripts' own logic, and that the shards they run
merge into every case of the suite, once. What it cannot: that Slurm or Kubernetes start them as
documented (no scheduler here).

usage: test_cluster_scripts.py SOURCE_DIR WORK_DIR CONVBP
"""
import json
import os
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("python3-yaml is missing: skipped")
    sys.exit(77)

source, work, convbp = sys.argv[1:4]
cluster = os.path.join(source, "scripts", "cluster")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def cases_of_suite(suite):
    out = subprocess.run([convbp, "cases", suite, "--json"], check=True, capture_output=True,
                         text=True).stdout
    return [(c["name"], c["problem"], c["pass"]) for c in json.loads(out)["cases"]]


expected = cases_of_suite("smoke")
options = "--impl naive --reps 1 --threads 1"

# --- Slurm ---------------------------------------------------------------------------------
env = dict(os.environ, CONVBP=convbp, SUITE="smoke", RESULTS=work, CONVBP_OPTIONS=options,
           SLURM_ARRAY_JOB_ID="4242", SLURM_ARRAY_TASK_COUNT="3", SLURM_ARRAY_TASK_MIN="0",
           SLURM_ARRAY_TASK_MAX="2", SLURM_CPUS_ON_NODE="1")
for i in range(3):
    r = subprocess.run(["bash", os.path.join(cluster, "shards.sbatch")],
                       env=dict(env, SLURM_ARRAY_TASK_ID=str(i)), capture_output=True, text=True)
    check(r.returncode == 0, f"shards.sbatch task {i}: {r.returncode} {r.stderr}")
bad = subprocess.run(["bash", os.path.join(cluster, "shards.sbatch")],
                     env=dict(env, SLURM_ARRAY_TASK_ID="2", SLURM_ARRAY_TASK_MIN="1",
                              SLURM_ARRAY_TASK_MAX="3"), capture_output=True, text=True)
check(bad.returncode == 2 and "--array=0-2" in bad.stderr,
      f"a shifted array is refused: {bad.returncode} {bad.stderr}")
r = subprocess.run(["bash", os.path.join(cluster, "merge.sbatch"), "4242"], env=env,
                   capture_output=True, text=True)
check(r.returncode == 0, f"merge.sbatch: {r.returncode} {r.stderr}")
if r.returncode == 0:
    report = json.load(open(os.path.join(work, "4242", "report.json")))
    got = [(c["name"], c["problem"], c["pass"]) for c in report["cases"]]
    check(got == expected, f"Slurm: merged cases {got} != the suite's {expected}")
    db = json.load(open(os.path.join(work, "tuning.json")))
    entries = [(e["problem"], e["pass"]) for s in db["sections"] for e in s["entries"]]
    check(sorted(entries) == sorted({(k, p) for _, k, p in expected}),
          f"Slurm: database entries {entries}")

# --- Kubernetes ----------------------------------------------------------------------------
shards = yaml.safe_load(open(os.path.join(cluster, "shards-job.yaml")))
merge = yaml.safe_load(open(os.path.join(cluster, "merge-job.yaml")))
spec = shards["spec"]
check(shards["apiVersion"] == "batch/v1" and shards["kind"] == "Job", "shards: a batch/v1 Job")
check(spec["completionMode"] == "Indexed", "shards: completionMode Indexed")
container = spec["template"]["spec"]["containers"][0]
check(spec["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure"), "restartPolicy")
index_env = [e for e in container["env"] if e["name"] == "SHARD"][0]
check(index_env["valueFrom"]["fieldRef"]["fieldPath"] ==
      "metadata.annotations['batch.kubernetes.io/job-completion-index']", "SHARD's fieldRef")
n = spec["completions"]
command = container["args"][0]
check(f'--shard "$SHARD/{n}"' in command, f"--shard I/{n} as completions says: {command}")
k8s = os.path.join(work, "k8s")
os.makedirs(k8s)


def local(cmd):
    # The image's convbp and the volume's mount point, as this machine has them.
    return (cmd.replace("convbp ", f"{convbp} ").replace("/results", k8s)
            .replace("resnet50", f"smoke {options}").replace("--threads 8 ", ""))


for i in range(n):
    r = subprocess.run(["sh", "-c", local(command)], env=dict(os.environ, SHARD=str(i)),
                       capture_output=True, text=True)
    check(r.returncode == 0, f"shards-job.yaml index {i}: {r.returncode} {r.stderr}")
merge_command = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
r = subprocess.run(["sh", "-c", local(merge_command)], capture_output=True, text=True)
check(r.returncode == 0, f"merge-job.yaml: {r.returncode} {r.stderr}")
if r.returncode == 0:
    report = json.load(open(os.path.join(k8s, "report.json")))
    got = [(c["name"], c["problem"], c["pass"]) for c in report["cases"]]
    check(got == expected, f"Kubernetes: merged cases {got} != the suite's {expected}")

print("FAILED" if failures else "passed", f"({len(failures)} failures)")
sys.exit(1 if failures else 0)
