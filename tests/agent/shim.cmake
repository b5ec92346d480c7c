# warden-shim and its agent-side client: tests/agent/test_shim.c starts the
# real warden-shim binary (built from agent/shim/) through wd_shim_spawn().
wd_add_test(test_shim SOURCES test_shim.c LIBS warden::agent_core LABEL unit TIMEOUT 120)
add_dependencies(test_shim warden-shim)
