drop statistics if exists read_models.audit_log_negated_position;
