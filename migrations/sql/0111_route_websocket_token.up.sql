-- Routes: where a WebSocket client may put its token (header, query, subprotocol). Routes recorded
-- before the option existed take tokens from headers only.
alter table read_models.routes add column websocket_token text not null default 'header';
