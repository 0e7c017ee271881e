"""Applies the SAM transform to template.yaml (aws-sam-translator) and lints
the result with cfn-lint: catches mistakes inside AWS::Serverless::Function
that the untransformed checks do not see."""
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class NoManagedPolicies:
    """The template names no managed policies; nothing to look up offline."""

    def load(self):
        return {}


def main(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    # `sam package` replaces local code paths with S3 locations before the
    # transform runs in CloudFormation; do the same with a placeholder.
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaged-code/iot-log-processor.zip"
    transformed = transform(template, {}, NoManagedPolicies())
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(transformed, out, indent=1)
    resources = transformed["Resources"]
    print(f"SAM transform: {len(resources)} resources; linting the result")
    return subprocess.call([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), out.name])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
