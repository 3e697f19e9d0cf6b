# No models to register: requests and replies are stream entries (see /api/v1/streams/).
