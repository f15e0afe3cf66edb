"""The tutor web app (`python -m app`): Gradio layout, handlers, rendering of steps and theorem cards, feedback."""
