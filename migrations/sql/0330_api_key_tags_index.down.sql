drop index if exists read_models.api_keys_tags;
