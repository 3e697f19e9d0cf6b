# The weather app stores nothing: requests and replies live only on the streams.
