#!/usr/bin/perl
# A test SMSC for gerbang's SMPP interop tests, built on Net::SMPP (Debian: libnet-smpp-perl), an
# SMPP 3.4 implementation independent of ours.
#
#   perl smsc.pl LOG_FILE [PORT]
#
# Prints "LISTENING <port>" once it accepts connections (PORT 0 or absent: any free port). Every
# connection is served by its own process. Every PDU that matters is appended to LOG_FILE, one line
# each ("bind ok", "submit <to> dc=<data_coding> ... text=<hex>", "enquire_link", "unbind", "drop").
#
# Environment: SMSC_SYSTEM_ID / SMSC_PASSWORD (default gerbang / secret); SMSC_MAX_TPS (submits per
# second per bind before answering ESME_RTHROTTLED, 0 = no limit); SMSC_RECEIPT_TLVS=0 to send the
# receipt text only, without the receipted_message_id and message_state TLVs; SMSC_LOG_TIME=1 to
# put the receive time of each submit (Unix seconds, microseconds) into its line as "t=<time>", just
# before text= (benches/delivery.sh joins it with the request's send time); SMSC_NODELAY=1 to set
# TCP_NODELAY on each bind (off by default: the SMSC then writes its submit_sm_resp and deliver_sm
# as separate small segments under Nagle's algorithm, which can hold the second for a delayed ACK);
# SMSC_ANSWER_DELAY_MS=<ms> for a slow SMSC: each submit is logged when it arrives and answered that
# long after, while the SMSC goes on reading (so a whole window can be taken and not yet answered);
# each accepted one's answer is then logged as "answered <to> t=<time>" (the SIGKILL measurement
# tells answers sent before a kill from submits whose answer was still due).
#
# What happens to a submit depends on the last four digits of destination_addr:
#   0001  receipt UNDELIV err:001 (unknown subscriber: number inactive)
#   0006  receipt EXPIRED err:006 (absent subscriber: phone off)
#   0013  receipt REJECTD err:013 (call barred)
#   0032  receipt UNDELIV err:032 (SMS inbox full)
#   0000  accepted, but no receipt ever
#   0011  submit refused with ESME_RINVDSTADR (0x0B)
#   0014  submit refused with ESME_RMSGQFUL (0x14)
#   0088  submit refused with ESME_RTHROTTLED (0x58)
#   0099  the connection is dropped without answering (mid-window)
#   else  accepted, receipt DELIVRD err:000
use strict;
use warnings;
use Net::SMPP;
use IO::Handle;
use POSIX qw(strftime);
use Time::HiRes qw(time);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use IO::Select;

my ($log_file, $port) = @ARGV;
die "usage: smsc.pl LOG_FILE [PORT]\n" unless defined $log_file;
$port //= 0;
my $system_id = $ENV{SMSC_SYSTEM_ID} // 'gerbang';
my $password = $ENV{SMSC_PASSWORD} // 'secret';
my $max_tps = $ENV{SMSC_MAX_TPS} // 0;
my $tlvs = ($ENV{SMSC_RECEIPT_TLVS} // '1') ne '0';
my $log_time = ($ENV{SMSC_LOG_TIME} // '0') ne '0';
my $nodelay = ($ENV{SMSC_NODELAY} // '0') ne '0';
my $answer_delay = ($ENV{SMSC_ANSWER_DELAY_MS} // 0) / 1000;

my $listener = Net::SMPP->new_listen('127.0.0.1', port => $port, smpp_version => 0x34,
                                     async => 1, listen => 64, timeout => 3600)
    or die "cannot listen: $!\n";
STDOUT->autoflush(1);
print "LISTENING ", $listener->sockport, "\n";
$SIG{CHLD} = 'IGNORE';

while (1) {
    my $connection = $listener->accept or next;
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        undef $listener;
        serve($connection);
        exit 0;
    }
    $connection->close;
}

sub note {
    open my $fh, '>>', $log_file or die "log: $!\n";
    print $fh join(' ', @_), "\n";
    close $fh;
}

sub serve {
    my ($c) = @_;
    setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1) or die "TCP_NODELAY: $!\n" if $nodelay;
    my ($counter, $second, $in_second) = (0, 0, 0);
    my @due;    # answers of a slow SMSC: [when, what]
    my $select = IO::Select->new($c);
    while (1) {
        if ($answer_delay > 0) {
            while (@due && $due[0][0] <= time) { (shift @due)->[1]->(); }
            my $wait = @due ? $due[0][0] - time : undef;
            next unless $select->can_read(defined $wait && $wait < 0 ? 0 : $wait);
        }
        my $pdu = $c->read_pdu() or exit 0;
        my $cmd = $pdu->{cmd};
        if ($cmd == 0x00000009 || $cmd == 0x00000002 || $cmd == 0x00000001) {
            my $ok = ($pdu->{system_id} // '') eq $system_id && ($pdu->{password} // '') eq $password;
            my $resp = { 9 => 'bind_transceiver_resp', 2 => 'bind_transmitter_resp',
                         1 => 'bind_receiver_resp' }->{$cmd};
            $c->$resp(system_id => 'TESTSMSC', seq => $pdu->{seq}, status => $ok ? 0 : 0x0E);
            note('bind', $ok ? 'ok' : 'refused');
            exit 0 unless $ok;
        } elsif ($cmd == 0x00000015) {
            $c->enquire_link_resp(seq => $pdu->{seq});
            note('enquire_link');
        } elsif ($cmd == 0x00000006) {
            $c->unbind_resp(seq => $pdu->{seq});
            note('unbind');
            exit 0;
        } elsif ($cmd == 0x80000005 || $cmd == 0x80000015) {
            # deliver_sm_resp, enquire_link_resp: nothing to do.
        } elsif ($cmd == 0x00000004) {
            my $now = int(time);
            if ($now != $second) { ($second, $in_second) = ($now, 0); }
            $in_second++;
            my $answer = submit($c, $pdu, $max_tps > 0 && $in_second > $max_tps, ++$counter);
            if ($answer_delay > 0) { push @due, [time + $answer_delay, $answer]; } else { $answer->(); }
        } else {
            $c->generic_nack(seq => $pdu->{seq}, status => 0x03);
        }
    }
}

sub submit {
    my ($c, $pdu, $over_rate, $counter) = @_;
    my $received = time;
    my $to = $pdu->{destination_addr} // '';
    my $suffix = substr($to, -4);
    note('submit', $to, "dc=$pdu->{data_coding}", "rd=$pdu->{registered_delivery}",
         "src=$pdu->{source_addr}", "ton=$pdu->{dest_addr_ton}", "npi=$pdu->{dest_addr_npi}",
         ($log_time ? sprintf('t=%.6f', $received) : ()),
         'text=' . unpack('H*', $pdu->{short_message} // ''));
    if ($suffix eq '0099') {
        note('drop');
        exit 0;
    }
    return sub { answer($c, $pdu, $over_rate, $counter, $to, $suffix) };
}

sub answer {
    my ($c, $pdu, $over_rate, $counter, $to, $suffix) = @_;
    my %refused = ('0011' => 0x0B, '0014' => 0x14, '0088' => 0x58);
    my $status = $over_rate ? 0x58 : $refused{$suffix};
    if ($status) {
        $c->submit_sm_resp(message_id => '', seq => $pdu->{seq}, status => $status);
        note('refused', $to, sprintf('0x%02X', $status));
        return;
    }
    # Ids unique across connections: this process, then a counter; decimal, as SMPP 3.4 says.
    my $id = sprintf('%d%06d', $$, $counter);
    $c->submit_sm_resp(message_id => $id, seq => $pdu->{seq});
    note('answered', $to, sprintf('t=%.6f', time)) if $answer_delay > 0;
    return if $suffix eq '0000';
    my %outcome = ('0001' => ['UNDELIV', '001', 5], '0006' => ['EXPIRED', '006', 3],
                   '0013' => ['REJECTD', '013', 8], '0032' => ['UNDELIV', '032', 5]);
    my ($stat, $err, $state) = @{ $outcome{$suffix} // ['DELIVRD', '000', 2] };
    my $date = strftime('%y%m%d%H%M', localtime);
    my $delivered = $stat eq 'DELIVRD' ? '001' : '000';
    my $text = substr($pdu->{short_message} // '', 0, 20);
    my $receipt = "id:$id sub:001 dlvrd:$delivered submit date:$date done date:$date "
                . "stat:$stat err:$err text:$text";
    my @tlvs = $tlvs ? (receipted_message_id => "$id\0", message_state => pack('C', $state)) : ();
    $c->deliver_sm(source_addr_ton => 1, source_addr_npi => 1, source_addr => $to,
                   dest_addr_ton => 5, dest_addr_npi => 0,
                   destination_addr => $pdu->{source_addr} // '', esm_class => 0x04,
                   short_message => $receipt, @tlvs);
    note('receipt', $to, $id, $stat);
}
