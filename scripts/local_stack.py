"""Deploys template.yaml to a local endpoint (moto) the way users deploy it.

`sam deploy` packages the function's code into S3; CloudFormation applies the
SAM transform and creates the resources. Here aws-sam-translator applies the
same transform, the code goes to a bucket on the local endpoint, and
CloudFormation's CreateStack (moto's) creates the stack. What the function
runs with is read back from the deployed function (GetFunctionConfiguration),
so every Ref, GetAtt, Sub and Join in its environment was resolved by
CloudFormation, not by this project.

    local_stack.py transform [--template template.yaml] --out FILE
    local_stack.py deploy --stack NAME [--template T | --transformed FILE]
                          [--param Key=Value ...] [--format json|env]

`deploy` prints the stack's outputs, its resources by logical id, the
function's environment, what moto's CloudFormation did not create, and an
inbox queue subscribed to every topic of the stack (what a subscriber gets).
The endpoint is AWS_ENDPOINT_URL, as for every AWS SDK.
"""
import argparse
import io
import json
import os
import sys
import time
import zipfile

os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))

# Where `sam package` would have put the code (one bucket on the local endpoint).
ARTIFACT_BUCKET = "local-sam-artifacts"
ARTIFACT_KEY = "iot-log-processor.zip"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class NoManagedPolicies:
    """The template names no managed policies; nothing to look up offline."""

    def load(self):
        return {}


def transformed_template(template_path):
    """The template as CloudFormation sees it after `sam package` and the SAM transform."""
    # Imported here: `deploy --transformed` (once per test stack) does without it.
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    with open(template_path) as f:
        template = yaml_parse(f.read())
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{ARTIFACT_KEY}"
    return transform(template, {}, NoManagedPolicies())


def code_zip():
    """What `sam package` would upload. moto never runs the code (that needs
    Docker; the function runs under `cargo lambda` instead), so a placeholder
    bootstrap stands in for the built binary."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho 'placeholder: the function runs under cargo lambda'\n")
    return buffer.getvalue()


def parameter_values(transformed, overrides):
    """Every parameter's value, defaults included, as `sam deploy` passes its
    overrides. moto applies a list parameter's *default* as one string (a
    `!Join` over it then joins its characters) but splits a value it is given."""
    values = {}
    for name, p in transformed.get("Parameters", {}).items():
        if "Default" in p:
            default = p["Default"]
            values[name] = ",".join(map(str, default)) if isinstance(default, list) else str(default)
    for p in overrides:
        key, sep, value = p.partition("=")
        if not sep or key not in transformed.get("Parameters", {}):
            raise SystemExit(f"--param {p!r}: expected Key=Value with a parameter of the template")
        values[key] = value
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def wait_for_stack(cfn, stack, deadline_seconds=120):
    """moto creates a stack within CreateStack; a real endpoint takes longer."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if not status["StackStatus"].endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise SystemExit(f"stack {stack} still {status['StackStatus']} after {deadline_seconds} s")
        time.sleep(0.2)


def deploy(args):
    import boto3

    if args.transformed:
        with open(args.transformed) as f:
            transformed = json.load(f)
    else:
        transformed = transformed_template(args.template)
    session = boto3.session.Session()
    s3 = session.client("s3")
    cfn = session.client("cloudformation")
    try:
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=ARTIFACT_KEY, Body=code_zip())
    cfn.create_stack(
        StackName=args.stack,
        TemplateBody=json.dumps(transformed),
        Parameters=parameter_values(transformed, args.param),
        Capabilities=CAPABILITIES,
    )
    stack = wait_for_stack(cfn, args.stack)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise SystemExit(f"stack {args.stack}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resources, types = {}, {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=args.stack):
        for r in page["StackResourceSummaries"]:
            # moto lists a topic's subscriptions without a logical id.
            if r["LogicalResourceId"]:
                resources[r["LogicalResourceId"]] = r.get("PhysicalResourceId", "")
                types[r["LogicalResourceId"]] = r["ResourceType"]
    aws_lambda = session.client("lambda")
    function = aws_lambda.get_function_configuration(
        FunctionName=resources["ProcessorFunction"]
    )
    # CloudFormation gives Lambda every variable as a string; moto's keeps a
    # Number parameter's value as a number, which a strict reader of
    # GetFunctionConfiguration (the AWS SDK for Rust: `iot-incidents redrive`)
    # refuses. Stored again as strings, as Lambda holds them.
    variables = function.get("Environment", {}).get("Variables", {})
    environment = {k: str(v) for k, v in variables.items()}
    if environment != variables:
        aws_lambda.update_function_configuration(
            FunctionName=function["FunctionName"], Environment={"Variables": environment}
        )
    sqs = session.client("sqs")
    sns = session.client("sns")
    inbox_url = sqs.create_queue(QueueName=f"{args.stack}-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    for logical, kind in types.items():
        if kind == "AWS::SNS::Topic":
            sns.subscribe(TopicArn=resources[logical], Protocol="sqs", Endpoint=inbox_arn)
    result = {
        "stack": args.stack,
        "outputs": outputs,
        "resources": resources,
        "function_name": function["FunctionName"],
        "environment": environment,
        "inbox_queue_url": inbox_url,
        # Declared by the template, not created by moto's CloudFormation, with
        # the condition each depends on (none: moto does not support the type).
        "not_created": {
            logical: {"type": body["Type"], "condition": body.get("Condition")}
            for logical, body in transformed["Resources"].items()
            if logical not in resources
        },
    }
    if args.format == "env":
        for name, value in sorted(environment.items()):
            print(f"{name}={value}")
        print(f"STACK_NAME={args.stack}")
        print(f"FUNCTION_NAME={function['FunctionName']}")
        print(f"INBOX_QUEUE_URL={inbox_url}")
    else:
        json.dump(result, sys.stdout, indent=1)
        print()
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("transform", help="write the SAM-transformed template (JSON)")
    t.add_argument("--template", default="template.yaml")
    t.add_argument("--out", required=True)
    d = sub.add_parser("deploy", help="CreateStack on AWS_ENDPOINT_URL; print what was deployed")
    d.add_argument("--stack", required=True)
    source = d.add_mutually_exclusive_group()
    source.add_argument("--template", default="template.yaml")
    source.add_argument("--transformed", help="a file written by `transform`")
    d.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--format", choices=["json", "env"], default="json")
    args = parser.parse_args(argv)
    if args.command == "transform":
        transformed = transformed_template(args.template)
        tmp = f"{args.out}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(transformed, f)
        os.replace(tmp, args.out)  # whole or not at all: test binaries share it
        return 0
    return deploy(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
