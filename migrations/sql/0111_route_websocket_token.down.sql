alter table read_models.routes drop column if exists websocket_token;
