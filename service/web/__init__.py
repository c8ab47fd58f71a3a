"""The runs page in the browser (spec section 7): server-rendered HTML next to the API, in the same app."""
