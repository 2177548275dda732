# `cmake --install`: binary, page, systemd unit, sample configuration and
# man page in FHS places (prefix /usr: /usr/sbin/palaverd,
# /usr/share/palaver/htdocs, /usr/lib/systemd/system/palaverd.service,
# /etc/palaver/palaverd.conf, /usr/share/man/man8/palaverd.8 and
# man5/palaverd.conf.5; for TLS /usr/sbin/palaver-cert,
# /usr/sbin/palaver-tls-setup and /usr/share/palaver/tls/haproxy.cfg).
include(GNUInstallDirs)

install(TARGETS palaverd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(DIRECTORY htdocs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/palaver/htdocs)
install(FILES docs/man/palaverd.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES docs/man/palaverd.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
# TLS in front (docs/tls.md): the HAProxy configuration, the local-CA tool
# and the one-command setup.
install(FILES cmake/tls/haproxy.cfg DESTINATION ${CMAKE_INSTALL_DATADIR}/palaver/tls)
install(PROGRAMS cmake/tls/palaver-cert cmake/tls/palaver-tls-setup
        DESTINATION ${CMAKE_INSTALL_SBINDIR})

# The unit names installed paths, so it is written at install time, with
# the prefix given to `cmake --install --prefix` (if any).
set(PV_UNIT_TEMPLATE ${CMAKE_CURRENT_SOURCE_DIR}/cmake/palaverd.service.in)
install(CODE "
  set(PV_SBINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}\")
  set(PV_HTDOCS \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/palaver/htdocs\")
  if(\"\${CMAKE_INSTALL_PREFIX}\" STREQUAL \"/usr\")
    set(PV_CONFDIR /etc/palaver)
  else()
    set(PV_CONFDIR \"\${CMAKE_INSTALL_PREFIX}/etc/palaver\")
  endif()
  # The sample configuration, unless the operator already has one.
  if(NOT EXISTS \"\$ENV{DESTDIR}\${PV_CONFDIR}/palaverd.conf\")
    file(INSTALL ${CMAKE_CURRENT_SOURCE_DIR}/cmake/palaverd.conf DESTINATION \"\${PV_CONFDIR}\")
  else()
    message(STATUS \"Keeping: \$ENV{DESTDIR}\${PV_CONFDIR}/palaverd.conf\")
  endif()
  configure_file(${PV_UNIT_TEMPLATE} \"${CMAKE_CURRENT_BINARY_DIR}/palaverd.service\" @ONLY)
  file(INSTALL \"${CMAKE_CURRENT_BINARY_DIR}/palaverd.service\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
")

# A .deb: cpack -G DEB in the build directory (tests/package.sh checks it).
# Shared-library dependencies are computed by dpkg-shlibdeps (CivetWeb is
# built in); the maintainer scripts enable and start the service as
# Debian's own daemons do; /etc/palaver/palaverd.conf is a conffile, so an
# upgrade keeps the operator's settings.
set(CPACK_PACKAGE_NAME palaver)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "palaver developers <palaver@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-threaded WebSocket chat broker")
set(CPACK_PACKAGE_DESCRIPTION "palaverd serves a browser chat page and WebSocket endpoints on one
port and relays chat between people on a LAN: names, presence, durable
history in SQLite, recovery after reconnects. It runs as a hardened
systemd service.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.54~)")
# HAProxy is what palaver-tls-setup installs and configures: suggested, not required.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "haproxy, openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/conffiles
    ${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
