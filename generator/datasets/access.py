"""IAM: who may reach a dataset's bucket besides the service.

* Every dataset has a read-only managed policy `dataset-<account>-<id>-DsRoPlc`, created with the dataset.
* Instances: a role and instance profile `instanceRole_<instance_id>` (EC2 may assume the role) carry the
  read-only policies of the datasets the instance may read, and the profile is associated to the instance.
  Revoking the last dataset removes the association, the profile and the role.
* Users: one per dataset, `...-DsTmpUsr` in group `...-DsTmpGrp` with policy `...-DsTmpPlc` (read and
  write: the data is uploaded through it); its access key's secret is in the creating answer only.

Everything lives under the path `/spinup/dataset/`, which the seed's operator policy allows. Functions raise
botocore errors; the caller turns them into problems."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from generator.datasets.aws import code_of

PATH = "/spinup/dataset/"
ASSUME_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
MAX_KEYS = 2  # IAM's limit of access keys per user


def read_policy_name(bucket: str) -> str:
    return f"{bucket}-DsRoPlc"


def user_names(bucket: str) -> tuple[str, str, str]:
    return f"{bucket}-DsTmpUsr", f"{bucket}-DsTmpGrp", f"{bucket}-DsTmpPlc"


def role_name(instance_id: str) -> str:
    return f"instanceRole_{instance_id}"


def policy_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:policy{PATH}{name}"


def _document(bucket: str, write: bool) -> str:
    actions = ["s3:GetObject", "s3:GetObjectVersion"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": actions, "Resource": f"arn:aws:s3:::{bucket}/*"},
    ]})


def create_read_policy(iam: Any, bucket: str) -> str:
    return iam.create_policy(PolicyName=read_policy_name(bucket), Path=PATH, PolicyDocument=_document(bucket, False),
                             Description=f"read access to dataset repository {bucket}")["Policy"]["Arn"]


def delete_policy(iam: Any, arn: str) -> None:
    """Detach it from every role, group and user, then delete it; absent is fine."""
    try:
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=arn):
            for role in page.get("PolicyRoles", []):
                iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
            for group in page.get("PolicyGroups", []):
                iam.detach_group_policy(GroupName=group["GroupName"], PolicyArn=arn)
            for user in page.get("PolicyUsers", []):
                iam.detach_user_policy(UserName=user["UserName"], PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise


# -- instances ----------------------------------------------------------------------------------------------

def instance_roles(iam: Any, arn: str) -> dict[str, str]:
    """{instance_id: role} for the instance roles holding the dataset's read policy."""
    found: dict[str, str] = {}
    try:
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=arn, EntityFilter="Role"):
            for role in page.get("PolicyRoles", []):
                if role["RoleName"].startswith("instanceRole_"):
                    found[role["RoleName"].removeprefix("instanceRole_")] = role["RoleName"]
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise
    return dict(sorted(found.items()))


def current_profile(ec2: Any, instance_id: str) -> tuple[str, str] | None:
    """(association id, profile arn) of the instance's associated profile, if any."""
    found = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    live = [a for a in found if a.get("State") in ("associating", "associated")]
    return (live[0]["AssociationId"], live[0]["IamInstanceProfile"]["Arn"]) if live else None


def grant_instance(iam: Any, ec2: Any, instance_id: str, arn: str) -> None:
    """Attach the read policy to the instance's role, making role, profile and association when missing.
    Raises ValueError when the instance already has another instance profile (we never replace one)."""
    name = role_name(instance_id)
    associated = current_profile(ec2, instance_id)
    if associated is not None and not associated[1].endswith(f"/{name}"):
        raise ValueError(f"instance {instance_id} already has instance profile {associated[1].rsplit('/', 1)[-1]}")
    made: list[str] = []
    try:
        if not _exists(lambda: iam.get_role(RoleName=name)):
            iam.create_role(RoleName=name, Path=PATH, AssumeRolePolicyDocument=json.dumps(ASSUME_EC2),
                            Description=f"datasets readable by instance {instance_id}")
            made.append("role")
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        if not _exists(lambda: iam.get_instance_profile(InstanceProfileName=name)):
            iam.create_instance_profile(InstanceProfileName=name, Path=PATH)
            made.append("profile")
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        if associated is None:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": name}, InstanceId=instance_id)
    except Exception:
        revoke_instance(iam, ec2, instance_id, arn)
        raise


def revoke_instance(iam: Any, ec2: Any, instance_id: str, arn: str) -> None:
    """Detach the read policy; when the role holds no other, remove association, profile and role."""
    name = role_name(instance_id)
    try:
        iam.detach_role_policy(RoleName=name, PolicyArn=arn)
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise
    try:
        if iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            return
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise
    associated = current_profile(ec2, instance_id)
    if associated is not None and associated[1].endswith(f"/{name}"):
        ec2.disassociate_iam_instance_profile(AssociationId=associated[0])
    _absent_ok(lambda: iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name))
    _absent_ok(lambda: iam.delete_instance_profile(InstanceProfileName=name))
    _absent_ok(lambda: iam.delete_role(RoleName=name))


# -- users --------------------------------------------------------------------------------------------------

def create_user(iam: Any, bucket: str) -> dict[str, Any]:
    """User, group and policy; the answer holds the access key's secret (shown once). A user that exists
    raises EntityAlreadyExists before anything is made; a later failure removes what was made."""
    user, group, policy = user_names(bucket)
    iam.create_user(UserName=user, Path=PATH, Tags=[{"Key": "spinup:dataset", "Value": bucket}])
    try:
        arn = iam.create_policy(PolicyName=policy, Path=PATH, PolicyDocument=_document(bucket, True),
                                Description=f"read and write access to dataset repository {bucket}")["Policy"]["Arn"]
        iam.create_group(GroupName=group, Path=PATH)
        iam.attach_group_policy(GroupName=group, PolicyArn=arn)
        iam.add_user_to_group(GroupName=group, UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
    except Exception:
        delete_user(iam, bucket, policy_arn_of=lambda: _policy_arn(iam, policy))
        raise
    return {"user": user, "group": group, "policy": policy,
            "credentials": {"akid": key["AccessKeyId"], "secret": key["SecretAccessKey"]}}


def user_keys(iam: Any, bucket: str) -> dict[str, Any] | None:
    user = user_names(bucket)[0]
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except ClientError as error:
        if code_of(error) == "NoSuchEntity":
            return None
        raise
    return {user: {"keys": {k["AccessKeyId"]: k["Status"] for k in keys}}}


def rotate_key(iam: Any, bucket: str) -> dict[str, Any] | None:
    """A new key; the old ones set Inactive. None when there is no user; ValueError (nothing changed) when
    the user already holds the most keys IAM allows."""
    user = user_names(bucket)[0]
    try:
        keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    except ClientError as error:
        if code_of(error) == "NoSuchEntity":
            return None
        raise
    if len(keys) >= MAX_KEYS:
        raise ValueError(f"user {user} already has {len(keys)} access keys; a rotation would make "
                         f"{len(keys) + 1}, and IAM allows {MAX_KEYS}: delete the user or its inactive key first")
    new = iam.create_access_key(UserName=user)["AccessKey"]
    for key in keys:
        iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    return {"keys": {k["AccessKeyId"]: "Inactive" for k in keys},
            "credentials": {"akid": new["AccessKeyId"], "secret": new["SecretAccessKey"]}}


def delete_user(iam: Any, bucket: str, policy_arn_of: Any) -> bool:
    """Remove keys, membership, user, group and policy; False when there was no user (the rest is still
    cleaned up)."""
    user, group, _ = user_names(bucket)
    existed = True
    try:
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        _absent_ok(lambda: iam.remove_user_from_group(GroupName=group, UserName=user))
        iam.delete_user(UserName=user)
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise
        existed = False
    arn = policy_arn_of()
    if arn:
        _absent_ok(lambda: iam.detach_group_policy(GroupName=group, PolicyArn=arn))
        delete_policy(iam, arn)
    _absent_ok(lambda: iam.delete_group(GroupName=group))
    return existed


def _policy_arn(iam: Any, name: str) -> str:
    for page in iam.get_paginator("list_policies").paginate(Scope="Local", PathPrefix=PATH):
        for policy in page["Policies"]:
            if policy["PolicyName"] == name:
                return str(policy["Arn"])
    return ""


def _exists(call: Any) -> bool:
    try:
        call()
    except ClientError as error:
        if code_of(error) == "NoSuchEntity":
            return False
        raise
    return True


def _absent_ok(call: Any) -> None:
    try:
        call()
    except ClientError as error:
        if code_of(error) != "NoSuchEntity":
            raise
