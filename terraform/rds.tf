################################################################################
# PostgreSQL on RDS, in the database subnets, reachable from the EKS nodes only.
# The master password (the owner role of the migrations) is generated and kept by RDS
# in Secrets Manager, encrypted with the database key (secrets.tf), so it never enters
# the Terraform state. Slow statements and DDL are logged to CloudWatch Logs.
################################################################################

resource "aws_security_group" "database" {
  name_prefix = "${var.name}-database-"
  description = "PostgreSQL of ${var.name}: reachable from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_nodes" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the EKS node security group"
  referenced_security_group_id = module.eks.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# Query logging: every DDL statement, and every statement slower than
# db_log_min_duration_ms. TLS is required of every client.
resource "aws_db_parameter_group" "postgres" {
  name_prefix = "${var.name}-postgres${var.db_engine_version}-"
  family      = "postgres${var.db_engine_version}"
  description = "PostgreSQL ${var.db_engine_version} of ${var.name}: query logging, TLS only"

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.db_log_min_duration_ms)
  }

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# The log groups RDS exports to, created beforehand so that they are encrypted and expire.
resource "aws_cloudwatch_log_group" "database" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.database.arn
}

# Enhanced Monitoring: RDS publishes OS metrics with this role.
data "aws_iam_policy_document" "database_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "database_monitoring" {
  name               = "${var.name}-rds-monitoring"
  description        = "Enhanced Monitoring of the ${var.name} database"
  assume_role_policy = data.aws_iam_policy_document.database_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "database_monitoring" {
  role       = aws_iam_role.database_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name                       = var.db_name
  username                      = "tessera"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.database.arn
  parameter_group_name          = aws_db_parameter_group.postgres.name

  # IAM database authentication is available to roles granted rds_iam; the services use
  # password authentication (the app secret).
  iam_database_authentication_enabled = true

  db_subnet_group_name   = module.vpc.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az

  backup_retention_period    = var.db_backup_retention_days
  copy_tags_to_snapshot      = true
  deletion_protection        = var.db_deletion_protection
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${var.name}-final"
  auto_minor_version_upgrade = true

  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.database.arn

  monitoring_interval = 60
  monitoring_role_arn = aws_iam_role.database_monitoring.arn

  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]

  lifecycle {
    precondition {
      condition     = var.db_max_allocated_storage > var.db_allocated_storage
      error_message = "db_max_allocated_storage must exceed db_allocated_storage."
    }
  }

  depends_on = [aws_cloudwatch_log_group.database, aws_iam_role_policy_attachment.database_monitoring]
}
