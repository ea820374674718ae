"""tiny-news: invented news stories and a tiny GPT-2 pretrained on them, for offline runs that learn."""
