# The portable engine's sources: the one list that every build of it reads
# (src/common/Makefile.am, kernel/Kbuild, test/fuzz/Makefile.am, and the
# top Makefile.am for the module's build).
TB_ENGINE_FILES = tb_wire.c tb_link.c tb_link_rx.c tb_engine.c tb_mr.c tb_ep.c tb_requester.c \
	tb_responder.c tb_recv.c tb_completer.c
# The control protocol of links to other hosts (XDomain).
TB_CTRL_FILES = tb_ctrl.c
