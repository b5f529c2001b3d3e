"""Checks infra/template.yaml for the mistakes a first real deployment hits, on the template as
CloudFormation receives it: decoded by cfn-lint and expanded by SAM's own translator (so what SAM
adds or generates - roles, queues, managed policies - is checked too, not assumed).
Usage: template_checks.py [TEMPLATE]   (run by infra/check.sh, part of `make lint`)."""
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
FAILURES = []


def check(name):
    """Registers a check; a failing assertion is reported with the check's name, and all run."""

    def wrap(fn):
        try:
            fn()
            print(f"ok   {name}")
        except AssertionError as e:
            FAILURES.append(name)
            print(f"FAIL {name}: {e}")
        return fn

    return wrap


class NoManagedPolicies:
    """SAM asks IAM for managed policy names used in Policies; the template uses none by name."""

    def load(self):
        return {}


def load(path):
    source, errors = decode(path)
    assert not errors, f"{path} does not parse: {errors}"
    source = json.loads(json.dumps(source, default=str))
    for res in source["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://placeholder/code.zip"  # sam build fills it in
    return source, transform(json.loads(json.dumps(source)), {}, NoManagedPolicies())


SOURCE, CFN = load(sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml")
RES = CFN["Resources"]
PARAMS = SOURCE["Parameters"]


def of_type(kind):
    return {k: v for k, v in RES.items() if v["Type"] == kind}


def props(name):
    return RES[name]["Properties"]


def getatt(name, attr="Arn"):
    return {"Fn::GetAtt": [name, attr]}


def statements(role):
    out = []
    for policy in props(role).get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:  # conditional statement: check its "true" branch
                st = st["Fn::If"][1]
            out.append(st)
    return out


def actions(st):
    a = st["Action"]
    return set(a if isinstance(a, list) else [a])


def evaluate(node, values):
    """Evaluates the intrinsics CloudFormation allows in Rules, for given parameter values."""
    if isinstance(node, dict):
        (fn, arg), = node.items()
        if fn == "Ref":
            return str(values.get(arg, PARAMS[arg].get("Default")))
        if fn == "Fn::Not":
            return not evaluate(arg[0], values)
        if fn == "Fn::And":
            return all(evaluate(a, values) for a in arg)
        if fn == "Fn::Or":
            return any(evaluate(a, values) for a in arg)
        if fn == "Fn::Equals":
            return evaluate(arg[0], values) == evaluate(arg[1], values)
        if fn == "Fn::Contains":
            return evaluate(arg[1], values) in [evaluate(a, values) for a in arg[0]]
        if fn == "Fn::EachMemberEquals":  # a CommaDelimitedList, given as "a,b"
            return all(m == evaluate(arg[1], values) for m in evaluate(arg[0], values).split(","))
        raise AssertionError(f"unsupported intrinsic {fn} in Rules")
    return str(node) if not isinstance(node, list) else node


def rules_accept(values):
    for rule in CFN.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        if not all(evaluate(a["Assert"], values) for a in rule["Assertions"]):
            return False
    return True


@check("versioned bucket: noncurrent versions and expired delete markers always expire")
def _():
    bucket = props("ArchiveBucket")
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    rules = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r.get("Status") == "Enabled"]
    noncurrent = [r for r in rules if "NoncurrentVersionExpiration" in r]
    assert noncurrent, "no always-enabled rule expires noncurrent versions (deletes never free storage)"
    rule = noncurrent[0]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "NoncurrentVersionDays"}
    assert rule.get("ExpiredObjectDeleteMarker") is True, "expired delete markers are never removed"
    assert 1 <= int(PARAMS["NoncurrentVersionDays"]["Default"]) <= 7, "default should be a few days"


@check("dead letters: rule, schedule and both functions' async invokes each have their own queue")
def _():
    declared = {k for k, v in SOURCE["Resources"].items() if v["Type"] == "AWS::SQS::Queue"}
    generated = set(of_type("AWS::SQS::Queue")) - declared
    assert not generated, f"SAM generated queues {generated} (DeadLetterConfig with Type instead of Arn)"
    rule = next(iter(of_type("AWS::Events::Rule").values()))["Properties"]
    schedule = next(iter(of_type("AWS::Scheduler::Schedule").values()))["Properties"]
    targets = {
        "rule": rule["Targets"][0].get("DeadLetterConfig", {}).get("Arn"),
        "schedule": schedule["Target"].get("DeadLetterConfig", {}).get("Arn"),
    }
    for name, cfg in of_type("AWS::Lambda::EventInvokeConfig").items():
        targets[name] = cfg["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        assert "MaximumRetryAttempts" in cfg["Properties"] and "MaximumEventAgeInSeconds" in cfg["Properties"], name
    assert len(targets) == 4, f"expected the rule, the schedule and two functions, found {sorted(targets)}"
    assert all(targets.values()), f"missing dead-letter target: {targets}"
    queues = [t["Fn::GetAtt"][0] for t in targets.values()]
    assert len(set(queues)) == 4, f"queues shared: {targets}"
    alarmed = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
               for a in of_type("AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"}
    assert set(queues) <= alarmed, f"queues without a depth alarm: {set(queues) - alarmed}"
    for role in ("BackupFunctionRole", "RestoreFunctionRole"):
        sends = [st for st in statements(role) if "sqs:SendMessage" in actions(st)]
        assert len(sends) == 1, f"{role} may send to {len(sends)} queues, expected its own failure queue"


@check("dead letters: the rule's queue policy admits EventBridge only for that rule (aws:SourceArn)")
def _():
    rule_name = next(iter(of_type("AWS::Events::Rule").values()))["Properties"].get("Name")
    assert rule_name, "the rule has no fixed name, so its ARN cannot scope the queue policy"
    for policy in of_type("AWS::SQS::QueuePolicy").values():
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Principal", {}).get("Service") == "events.amazonaws.com":
                arn = st.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
                assert arn, "EventBridge may send from any rule"
                assert arn["Fn::Sub"].endswith(":rule/" + rule_name["Fn::Sub"]), f"{arn} is not the rule {rule_name}"
                return
    raise AssertionError("no queue policy lets EventBridge deliver dead letters")


@check("concurrency: no function reserves concurrency unless a parameter asks for it")
def _():
    for name, fn in of_type("AWS::Lambda::Function").items():
        value = fn["Properties"].get("ReservedConcurrentExecutions")
        assert value is None or isinstance(value, dict), f"{name} reserves {value} (fails at the quota of 10)"
    assert PARAMS["RestoreReservedConcurrency"]["Default"] == -1


@check("alarms: none fires on day one (no alarm treats missing data as breaching)")
def _():
    for name, alarm in of_type("AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"].get("TreatMissingData") != "breaching", f"{name} fires before any data"
    nrb = props("NoRecentBackupAlarm")
    assert nrb.get("InsufficientDataActions"), "a stopped schedule (no data after the first backup) notifies nobody"


@check("lifecycle: STANDARD_IA/ONEZONE_IA under 30 days is refused, other choices pass")
def _():
    refused = [("STANDARD_IA", 7), ("ONEZONE_IA", 29), ("STANDARD_IA", 1)]
    accepted = [("STANDARD_IA", 0), ("STANDARD_IA", 30), ("ONEZONE_IA", 90), ("GLACIER_IR", 7), ("DEEP_ARCHIVE", 1)]
    for cls, days in refused:
        assert not rules_accept({"TransitionStorageClass": cls, "TransitionAfterDays": days}), f"{cls} {days} accepted"
    for cls, days in accepted:
        assert rules_accept({"TransitionStorageClass": cls, "TransitionAfterDays": days}), f"{cls} {days} refused"


@check("VPC: each function role carries AWSLambdaVPCAccessExecutionRole exactly once")
def _():
    for role in ("BackupFunctionRole", "RestoreFunctionRole", "ApiFunctionRole"):
        arns = json.dumps(props(role).get("ManagedPolicyArns", []))
        assert arns.count("AWSLambdaVPCAccessExecutionRole") == 1, f"{role}: {arns}"


@check("bucket policy: only the named role and ngbak's own roles may set the restore tag")
def _():
    sts = props("ArchiveBucketPolicy")["PolicyDocument"]["Statement"]
    sts = [s["Fn::If"][1] if "Fn::If" in s else s for s in sts]
    deny = [s for s in sts if s["Effect"] == "Deny" and "s3:PutObjectTagging" in actions(s)]
    assert deny, "anyone with s3:PutObjectTagging can trigger a restore"
    cond = deny[0]["Condition"]
    assert cond["Null"] == {"s3:RequestObjectTag/ngbak-restore": "false"}, cond
    allowed = json.dumps(cond["ArnNotEquals"]["aws:PrincipalArn"])
    task_role = props("TaskRole")["RoleName"]["Fn::Sub"]
    for who in ('"RestoreRequesterRoleArn"', '"RestoreFunctionRole"', task_role):
        assert who in allowed, f"{who} missing from {allowed}"


@check("container task role can prune and delete (retention, legal hold, delete) under the prefix")
def _():
    needed = {"s3:DeleteObject", "s3:GetObjectRetention", "s3:GetObjectLegalHold"}
    for st in statements("TaskRole"):
        if needed <= actions(st) and st["Resource"]["Fn::Sub"][0].endswith("${ArchivePrefix}*"):
            return
    raise AssertionError(f"no statement grants {sorted(needed)} on the whole prefix")


@check("runner: NGBAK_RUNNER is a parameter (default auto), and fargate without the task is refused")
def _():
    assert PARAMS["Runner"]["Default"] == "auto" and set(PARAMS["Runner"]["AllowedValues"]) == {"auto", "lambda", "fargate"}
    env = SOURCE["Globals"]["Function"]["Environment"]["Variables"]
    for var in ("NGBAK_RUNNER", "NGBAK_ECS_CLUSTER", "NGBAK_ECS_TASK_DEFINITION", "NGBAK_ECS_SUBNETS", "NGBAK_ECS_SECURITY_GROUPS"):
        assert var in env, f"the functions lack {var}"
    assert not rules_accept({"Runner": "fargate", "EnableContainerTask": "false"})
    task = {"EnableContainerTask": "true", "ContainerImage": "ngbak:1", "SubnetIds": "subnet-1"}
    assert rules_accept({"Runner": "fargate", **task})
    assert rules_accept({"Runner": "auto", "EnableContainerTask": "false"})


@check("task: enabling it without an image or without subnets is refused")
def _():
    on = {"EnableContainerTask": "true", "ContainerImage": "123.dkr.ecr.us-east-1.amazonaws.com/ngbak:1"}
    assert rules_accept({**on, "SubnetIds": "subnet-1"})
    assert rules_accept({**on, "TaskSubnetIds": "subnet-1,subnet-2"})
    assert not rules_accept({**on, "ContainerImage": "", "SubnetIds": "subnet-1"}), "no image accepted"
    assert not rules_accept(on), "no subnets accepted"
    assert rules_accept({"EnableContainerTask": "false"})


@check("runner: both functions may RunTask only our task definition on our cluster, and pass only its roles")
def _():
    for role in ("BackupFunctionRole", "RestoreFunctionRole"):
        sts = statements(role)
        run = [s for s in sts if "ecs:RunTask" in actions(s)]
        assert len(run) == 1, f"{role}: {len(run)} RunTask statements"
        assert "task-definition/${AWS::StackName}-task:" in json.dumps(run[0]["Resource"]), run[0]["Resource"]
        assert run[0]["Condition"]["ArnEquals"]["ecs:cluster"] == getatt("TaskCluster"), run[0]
        passes = [s for s in sts if "iam:PassRole" in actions(s)]
        assert len(passes) == 1 and passes[0]["Resource"] == [getatt("TaskRole"), getatt("TaskExecutionRole")], passes
        assert passes[0]["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


@check("task: cluster, log group with metric filters, architecture parameter, the functions' environment")
def _():
    assert of_type("AWS::ECS::Cluster"), "no ECS cluster"
    task = props("BackupTaskDefinition")
    assert task["RuntimePlatform"]["CpuArchitecture"] == {"Ref": "TaskArchitecture"}
    container = task["ContainerDefinitions"][0]
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "TaskLogGroup"}
    filtered = {f["Properties"]["MetricTransformations"][0]["MetricName"] for f in of_type("AWS::Logs::MetricFilter").values()
                if f["Properties"]["LogGroupName"] == {"Ref": "TaskLogGroup"}}
    assert {"BackupSuccess", "RestoreSuccess", "Failures"} <= filtered, f"task metrics: {filtered}"
    task_env = {e["Name"] for e in container["Environment"]}
    function_env = set(SOURCE["Globals"]["Function"]["Environment"]["Variables"])
    function_env |= set(SOURCE["Resources"]["BackupFunction"]["Properties"]["Environment"]["Variables"])
    missing = {v for v in function_env - task_env if not v.startswith("NGBAK_ECS_") and v != "RUST_LOG"}
    assert not missing, f"the task lacks the functions' settings {sorted(missing)}"


def may(role, action, key):
    """Whether an Allow statement of `role` grants `action` on the archive-prefix-relative `key`
    (Resource patterns `arn:…:s3:::${Bucket}/${ArchivePrefix}<glob>`, globbed as IAM does)."""
    import fnmatch

    for st in statements(role):
        if st.get("Effect") != "Allow" or action not in actions(st):
            continue
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for res in resources:
            template = res["Fn::Sub"][0] if isinstance(res, dict) and "Fn::Sub" in res else str(res)
            if "/${ArchivePrefix}" not in template:
                continue
            glob = template.split("/${ArchivePrefix}", 1)[1]
            if fnmatch.fnmatchcase(key, glob):
                return True
    return False


# The objects each job writes and deletes, named as src/id.rs and src/store/lock.rs name them.
BACKUP_ID = "snapshot_2026-11-23T03-00-00Z"
SAFETY_ID = "pre-restore_snapshot_2026-11-23T03-00-00Z_2026-11-23T04-00-00-000Z"


def writes_of_a_backup(backup_id):
    return [("s3:PutObject", f"{backup_id}.ngbak"), ("s3:AbortMultipartUpload", f"{backup_id}.ngbak"),
            ("s3:PutObject", f"{backup_id}.manifest.json"), ("s3:PutObject", f"{backup_id}.backup.lock"),
            ("s3:DeleteObject", f"{backup_id}.backup.lock")]


WRITES_OF_A_RESTORE = [
    ("s3:GetObject", f"{BACKUP_ID}.ngbak"), ("s3:PutObjectTagging", f"{BACKUP_ID}.ngbak"),
    ("s3:PutObject", f"{BACKUP_ID}.restore-report.json"),
    ("s3:PutObject", "ngbak-restore.lock"), ("s3:DeleteObject", "ngbak-restore.lock"),
] + writes_of_a_backup(SAFETY_ID)  # the safety backup before the restore writes


@check("roles: each function and the task may write (and delete) every object its jobs write")
def _():
    jobs = {"BackupFunctionRole": writes_of_a_backup(BACKUP_ID), "RestoreFunctionRole": WRITES_OF_A_RESTORE,
            "TaskRole": writes_of_a_backup(BACKUP_ID) + WRITES_OF_A_RESTORE}
    missing = [f"{role}: {action} {key}" for role, needs in jobs.items() for action, key in needs
               if not may(role, action, key)]
    assert not missing, "denied: " + "; ".join(missing)


@check("roles: the restore function cannot delete or overwrite archives other than its safety backups")
def _():
    for action in ("s3:DeleteObject", "s3:PutObject"):
        for key in (f"{BACKUP_ID}.ngbak", f"{BACKUP_ID}.manifest.json"):
            assert not may("RestoreFunctionRole", action, key), f"the restore function may {action} {key}"


# ---------------------------------------------------------------- the operator API
API_URL_ARNS = [getatt("ApiFunction"), {"Fn::Sub": "${ApiFunction.Arn}:operator"}]


def policy_statements(name):
    return props(name)["PolicyDocument"]["Statement"]


def resources(st):
    return st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]


@check("api: ApiEnabled=false leaves out every API resource and output, and nothing else refers to them")
def _():
    assert PARAMS["ApiEnabled"]["Default"] == "true" and SOURCE["Conditions"]["ApiOn"] == {"Fn::Equals": [{"Ref": "ApiEnabled"}, "true"]}
    api = {k for k in RES if k.startswith("Api")}
    assert {"ApiFunction", "ApiFunctionRole", "ApiFunctionUrl", "ApiOperatorFunctionUrl", "ApiLogGroup",
            "ApiReadOnlyPolicy", "ApiOperatorPolicy"} <= api, sorted(api)
    unconditional = [k for k in api if RES[k].get("Condition") != "ApiOn"]
    assert not unconditional, f"not left out with ApiEnabled=false: {unconditional}"
    for name, res in RES.items():
        if name not in api:
            text = json.dumps(res)
            assert not any(f'"{a}"' in text or f'"{a}.' in text or "${" + a + "." in text for a in api), f"{name} refers to the API"
    for name, out in CFN["Outputs"].items():
        if any(a in json.dumps(out["Value"]) for a in api):
            assert out.get("Condition") == "ApiOn", f"output {name} outlives ApiEnabled=false"
    assert {"ApiUrl", "ApiFunctionName", "ApiReadOnlyPolicyArn", "ApiOperatorPolicyArn"} <= set(CFN["Outputs"])


@check("api: both Function URLs are AWS_IAM, the operator one on the `operator` alias, and none is public")
def _():
    urls = of_type("AWS::Lambda::Url")
    assert set(urls) == {"ApiFunctionUrl", "ApiOperatorFunctionUrl"}, sorted(urls)
    for name, url in urls.items():
        assert url["Properties"]["AuthType"] == "AWS_IAM", f"{name}: {url['Properties']['AuthType']}"
        assert url["Properties"].get("InvokeMode") == "BUFFERED", name
    assert "Qualifier" not in props("ApiFunctionUrl")
    alias = props("ApiOperatorAlias")
    assert alias["Name"] == "operator" and alias["FunctionName"] == {"Ref": "ApiFunction"}, alias
    assert props("ApiOperatorFunctionUrl")["Qualifier"] == "operator"
    for name, perm in of_type("AWS::Lambda::Permission").items():
        target = json.dumps(perm["Properties"]["FunctionName"])
        assert "ApiFunction" not in target, f"{name} grants {perm['Properties']['Principal']} the API"


@check("api: the read-only policy reaches the read-only URL only; both invoke only through a URL")
def _():
    for name, allowed in (("ApiReadOnlyPolicy", API_URL_ARNS[:1]), ("ApiOperatorPolicy", API_URL_ARNS)):
        sts = policy_statements(name)
        granted = set()
        for st in sts:
            assert st["Effect"] == "Allow" and actions(st) <= {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}, st
            assert resources(st) == allowed, f"{name}: {st['Resource']}"
            if "lambda:InvokeFunctionUrl" in actions(st):
                assert st["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}, st
            if "lambda:InvokeFunction" in actions(st):  # Function URLs since October 2025 need it too
                assert st["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}, f"{name} allows direct invokes"
            granted |= actions(st)
        assert granted == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}, f"{name}: {granted}"
        text = props(name)["Description"]
        assert "ApiReadOnlyPolicy" in text and "ApiOperatorPolicy" in text, f"{name} does not say which to attach: {text}"


@check("api: the API role starts jobs only through the two functions, and never tags, signs or connects")
def _():
    sts = statements("ApiFunctionRole")
    invokes = [st for st in sts if any(a.startswith("lambda:") for a in actions(st))]
    assert len(invokes) == 1 and actions(invokes[0]) == {"lambda:InvokeFunction"}, invokes
    assert resources(invokes[0]) == [getatt("BackupFunction"), getatt("RestoreFunction")], invokes[0]["Resource"]
    everything = set().union(*(actions(st) for st in sts))
    for denied in ("s3:PutObjectTagging", "kms:Sign", "ecs:RunTask", "iam:PassRole", "s3:*", "lambda:*"):
        assert denied not in everything, f"the API role has {denied}"
    secrets = [st for st in sts if "secretsmanager:GetSecretValue" in actions(st)]
    assert all(st["Resource"] == {"Ref": "IdentitySecretArn"} for st in secrets), f"secrets beyond the identity: {secrets}"
    env = SOURCE["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["NGBAK_BACKUP_FUNCTION"] == getatt("BackupFunction") and env["NGBAK_RESTORE_FUNCTION"] == getatt("RestoreFunction")
    assert env["NGBAK_API_MAX_UPLOAD_BYTES"] == {"Ref": "ApiMaxUploadBytes"} and env["NGBAK_IDENTITY_SECRET_ARN"]
    assert int(PARAMS["ApiMaxUploadBytes"]["Default"]) == 107374182400
    assert not {"NGBAK_KMS_SIGNING_KEY", "NGBAK_SIGNING_KEY_SECRET_ARN"} & set(env), "the API would sign"
    log = SOURCE["Resources"]["ApiLogGroup"]["Properties"]
    assert log["RetentionInDays"] == {"Ref": "LogRetentionDays"} and props("ApiFunction")["LoggingConfig"]["LogGroup"] == {"Ref": "ApiLogGroup"}


@check("api: the role may read, write job records and uploads, and delete backups under the prefix only")
def _():
    needs = [("s3:GetObject", f"{BACKUP_ID}.ngbak"), ("s3:GetObject", "ngbak-restore.lock"),
             ("s3:GetObjectTagging", f"{BACKUP_ID}.ngbak"), ("s3:PutObject", "job_2026-11-23T03-00-00Z.job.json"),
             ("s3:DeleteObject", f"{BACKUP_ID}.ngbak"), ("s3:DeleteObject", f"{BACKUP_ID}.manifest.json"),
             ("s3:GetObjectRetention", f"{BACKUP_ID}.ngbak"), ("s3:GetObjectLegalHold", f"{BACKUP_ID}.ngbak"),
             ("s3:ListMultipartUploadParts", f"{BACKUP_ID}.ngbak")] + writes_of_a_backup(BACKUP_ID)
    missing = [f"{action} {key}" for action, key in needs if not may("ApiFunctionRole", action, key)]
    assert not missing, "denied: " + "; ".join(missing)
    for st in statements("ApiFunctionRole"):
        if any(a.startswith("s3:") for a in actions(st)):
            for res in resources(st):
                template = res["Fn::Sub"][0]
                assert template.endswith("${Bucket}") or "/${ArchivePrefix}" in template, f"S3 beyond the prefix: {template}"

if FAILURES:
    sys.exit(f"template_checks: {len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
print("template_checks: all checks pass")
