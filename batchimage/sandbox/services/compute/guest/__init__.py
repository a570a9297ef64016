"""What happens inside a sandbox VM: its guest agent, the scripts run commands give it,
work they leave behind (`detached`) and Windows setup state (`windows`)."""
