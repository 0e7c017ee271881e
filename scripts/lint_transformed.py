"""Applies the SAM transform to template.yaml (aws-sam-translator, the same
transform `scripts/local_stack.py` deploys) and lints the result with
cfn-lint: catches mistakes inside AWS::Serverless::Function that the
untransformed checks do not see."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from local_stack import transformed_template  # noqa: E402


def main(path):
    transformed = transformed_template(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(transformed, out, indent=1)
    resources = transformed["Resources"]
    print(f"SAM transform: {len(resources)} resources; linting the result")
    return subprocess.call([os.path.join(os.path.dirname(sys.executable), "cfn-lint"), out.name])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
