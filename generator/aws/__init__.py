"""The AWS pieces (boto3 only): clients, Secrets Manager database credentials, RDS IAM tokens. See README.md."""
